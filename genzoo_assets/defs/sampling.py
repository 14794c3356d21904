"""Per-sample ground truth: SMAL shape (betas) and pose + camera, one Parquet file per partition."""

import dagster as dg
import numpy as np
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix
from genzoo_assets.core.sampling.partition import sample_poses_partition, sample_shapes_partition
from genzoo_assets.core.sampling.poses import make_pose_sampler
from genzoo_assets.core.sampling.shapes import make_shape_sampler
from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs.io import read_partition, write_partition
from genzoo_assets.defs.partitions import sample_partitions, species_and_shard
from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.defs.species import species

BETA_BOUND = 10.0


class ShapeConfig(dg.Config):
    backend: str = "prior"  # prior (offline default) | clip_flow (the paper's: CLIP + AWOL flow)
    smal_data: str = ""  # prior: SMAL data file with family cluster means/covariances
    clip_dir: str = ""  # clip_flow: local CLIP text-encoder directory (ViT-B/32, laion2b_s34b_b79k)
    flow_checkpoint: str = ""  # clip_flow: AWOL RealNVP checkpoint
    attributes: str = ""  # clip_flow: GenZoo's animal_attributes.npz (species Gaussians in CLIP space)


class PoseConfig(dg.Config):
    backend: str = "procedural"  # procedural (offline default) | bank (GenZoo's dog_poses.npz etc.)
    pose_bank: str = ""
    # Global orientation: bank (default for the bank backend, GenZoo's: the bank's orient_6d) |
    # view (our yaw/pitch viewpoint sampler; the procedural backend's only choice). Empty: the backend's default.
    orientation: str = ""
    camera_model: str = "perspective"  # perspective (GenZoo v2) | weak (GenZoo v1)
    camera_margin: float = 0.0  # image fraction kept free on each side (GenZoo's framing: none)


def rotation_error(df) -> float:
    """Largest deviation of the stored rotations from SO(3) (NaN counts as failure)."""
    aa = np.concatenate([np.stack(df["global_orient"].to_numpy()), np.stack(df["body_pose"].to_numpy())], axis=1)
    mats = axis_angle_to_matrix(torch.from_numpy(aa.reshape(-1, 3)).double()).numpy()
    gram = np.einsum("nij,nkj->nik", mats, mats) - np.eye(3)
    err = max(float(np.abs(gram).max(initial=0.0)), float(np.abs(np.linalg.det(mats) - 1).max(initial=0.0)))
    return err if np.isfinite(err) else float("inf")


def _options(config: dg.Config, backend_field: str = "backend") -> dict:
    return {k: v for k, v in config.model_dump().items() if k != backend_field and v not in ("", None)}


@dg.asset(
    partitions_def=sample_partitions,
    deps=[species],
    group_name="sampling",
    kinds={"pytorch", "parquet"},
    check_specs=[dg.AssetCheckSpec("betas_finite_and_bounded", asset="shape_params"),
                 dg.AssetCheckSpec("sample_count_matches_plan", asset="shape_params")],
)
def shape_params(context: dg.AssetExecutionContext, config: ShapeConfig, settings: GenZooSettings):
    """Betas per sample from the species' shape distribution (seeded by sample id)."""
    species_key, shard = species_and_shard(context)
    root = settings.root()
    row = frame.species_row(root, species_key)
    sampler = make_shape_sampler(config.backend, settings.body(), **_options(config))
    df = sample_shapes_partition(
        row, shard, settings.shard_indices(shard), sampler, base_seed=settings.base_seed, run_id=context.run_id
    )
    path = write_partition(root, "shape_params", species_key, shard, df)
    betas = np.stack(df["betas"].to_numpy())
    bounded = bool(np.isfinite(betas).all() and np.abs(betas).max() <= BETA_BOUND)
    return dg.MaterializeResult(
        metadata={"num_samples": len(df), "backend": config.backend, "path": dg.MetadataValue.path(str(path)),
                  "beta_abs_max": float(np.abs(betas).max())},
        check_results=[
            dg.AssetCheckResult(check_name="betas_finite_and_bounded", passed=bounded,
                                metadata={"abs_max": float(np.abs(betas).max()), "bound": BETA_BOUND}),
            dg.AssetCheckResult(check_name="sample_count_matches_plan", passed=len(df) == settings.samples_per_shard,
                                metadata={"rows": len(df), "planned": settings.samples_per_shard}),
        ],
    )


@dg.asset(
    partitions_def=sample_partitions,
    deps=[shape_params],
    group_name="sampling",
    kinds={"pytorch", "parquet"},
    check_specs=[dg.AssetCheckSpec("rotations_orthonormal", asset="pose_params")],
)
def pose_params(context: dg.AssetExecutionContext, config: PoseConfig, settings: GenZooSettings):
    """Pose (posture, head and tail), viewpoint and camera per sample, and the posed 3D keypoints."""
    species_key, shard = species_and_shard(context)
    root = settings.root()
    shapes = read_partition(root, "shape_params", species_key, shard)
    body = settings.body()
    options = {"path": config.pose_bank} if config.pose_bank else {}
    if config.orientation:
        options["orientation"] = config.orientation
    pose_sampler = make_pose_sampler(config.backend, body, **options)
    df = sample_poses_partition(
        shapes, body, pose_sampler, camera_model=config.camera_model, resolution=settings.resolution,
        base_seed=settings.base_seed, run_id=context.run_id, margin=config.camera_margin,
    )
    path = write_partition(root, "pose_params", species_key, shard, df)
    err = rotation_error(df)
    return dg.MaterializeResult(
        metadata={"num_samples": len(df), "backend": config.backend, "camera_model": config.camera_model,
                  "orientation": pose_sampler.orientation,
                  "postures": dg.MetadataValue.json(df["posture"].value_counts().to_dict()),
                  "path": dg.MetadataValue.path(str(path))},
        check_results=[dg.AssetCheckResult(check_name="rotations_orthonormal", passed=err < 1e-4,
                                           metadata={"max_error": err})],
    )
