"""Per-sample ground truth: SMAL shape (betas) and pose + camera, one Parquet file per partition."""

import dagster as dg

from genzoo_assets.core.checks import betas_within_bound
from genzoo_assets.core.planning.plan import partition_plan
from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs.io import backend_metadata, check_result, read_partition, write_partition
from genzoo_assets.defs.partitions import sample_partitions, species_and_shard
from genzoo_assets.defs.resources import CheckedFields, GenZooSettings, between, checked
from genzoo_assets.defs.species import species


class ShapeConfig(dg.Config):
    backend: str = "prior"  # prior (offline default) | clip_flow (the paper's: CLIP + AWOL flow)
    smal_data: str = ""  # prior: SMAL data file with family cluster means/covariances
    clip_dir: str = ""  # clip_flow: local CLIP text-encoder directory (ViT-B/32, laion2b_s34b_b79k)
    flow_checkpoint: str = ""  # clip_flow: AWOL RealNVP checkpoint
    attributes: str = (
        ""  # clip_flow: GenZoo's animal_attributes.npz (species Gaussians in CLIP space)
    )


class PoseConfig(CheckedFields, dg.Config):
    backend: str = "procedural"  # procedural (offline default) | bank (GenZoo's dog_poses.npz etc.)
    pose_bank: str = ""
    # Global orientation: bank (default for the bank backend, GenZoo's: the bank's orient_6d) |
    # view (our yaw/pitch viewpoint sampler; the procedural backend's only choice). Empty: the backend's default.
    orientation: str = ""
    camera_model: str = "perspective"  # perspective (GenZoo v2) | weak (GenZoo v1)
    camera_margin: float = 0.0  # image fraction kept free on each side (GenZoo's framing: none)

    _margin = checked("camera_margin", check=between(0.0, 0.5, below_high=True))


def _options(config: dg.Config, backend_field: str = "backend") -> dict:
    return {
        k: v for k, v in config.model_dump().items() if k != backend_field and v not in ("", None)
    }


@dg.asset(
    partitions_def=sample_partitions,
    deps=[species],
    group_name="sampling",
    kinds={"pytorch", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(
            "betas_within_sampler_bound",
            asset="shape_params",
            description="stored betas are finite and inside the shape sampler's bound",
        )
    ],
)
def shape_params(context: dg.AssetExecutionContext, config: ShapeConfig, settings: GenZooSettings):
    """Betas per sample from the species' shape distribution (seeded by sample id)."""
    from genzoo_assets.core.sampling.partition import sample_shapes_partition  # torch
    from genzoo_assets.core.sampling.shapes import make_shape_sampler

    species_key, shard = species_and_shard(context)
    root = settings.root()
    row = frame.species_row(root, species_key)
    sampler = make_shape_sampler(config.backend, settings.body(), **_options(config))
    df = sample_shapes_partition(
        row,
        shard,
        settings.shard_indices(shard),
        sampler,
        base_seed=settings.base_seed,
        run_id=context.run.run_id,
    )
    path = write_partition(root, "shape_params", species_key, shard, df)
    stored = read_partition(root, "shape_params", species_key, shard)
    outcome = betas_within_bound(stored["sample_id"], stored["betas"], sampler.beta_limit)
    return dg.MaterializeResult(
        metadata={
            "num_samples": len(df),
            **backend_metadata(df["shape_backend"]),
            "path": dg.MetadataValue.path(str(path)),
            "beta_abs_max": outcome.metadata["abs_max"],
        },
        check_results=[check_result("betas_within_sampler_bound", outcome)],
    )


@dg.asset(
    partitions_def=sample_partitions,
    deps=[shape_params],
    group_name="sampling",
    kinds={"pytorch", "parquet"},
)
def pose_params(context: dg.AssetExecutionContext, config: PoseConfig, settings: GenZooSettings):
    """Pose (posture, head and tail), viewpoint and camera per sample, and the posed 3D keypoints.

    A partition of a planned round (`planning/rounds.parquet`) draws its posture and viewpoint bins
    from that plan's proposal and records `round`, `plan_id` and `importance_weight`."""
    from genzoo_assets.core.sampling.partition import sample_poses_partition  # torch
    from genzoo_assets.core.sampling.poses import make_pose_sampler

    species_key, shard = species_and_shard(context)
    root = settings.root()
    shapes = read_partition(root, "shape_params", species_key, shard)
    body = settings.body()
    options = {"path": config.pose_bank} if config.pose_bank else {}
    if config.orientation:
        options["orientation"] = config.orientation
    pose_sampler = make_pose_sampler(config.backend, body, **options)
    plan = partition_plan(root, species_key, shard)  # None: not in a planned round, uniform
    df = sample_poses_partition(
        shapes,
        body,
        pose_sampler,
        camera_model=config.camera_model,
        resolution=settings.resolution,
        base_seed=settings.base_seed,
        run_id=context.run.run_id,
        margin=config.camera_margin,
        plan=plan,
    )
    path = write_partition(root, "pose_params", species_key, shard, df)
    return dg.MaterializeResult(
        metadata={
            "num_samples": len(df),
            **backend_metadata(df["pose_backend"]),
            "camera_model": config.camera_model,
            "orientation": pose_sampler.orientation,
            "postures": dg.MetadataValue.json(df["posture"].value_counts().to_dict()),
            "round": 0 if plan is None else plan.round,
            "plan_id": "uniform" if plan is None else plan.plan_id,
            "importance_weight_mean": float(df["importance_weight"].mean()),
            "path": dg.MetadataValue.path(str(path)),
        },
    )
