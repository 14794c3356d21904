"""Generated images: FLUX + Canny/depth ControlNets (the paper's) or the offline render-composite default."""

import dagster as dg
import pandas as pd
import pydantic

from genzoo_assets.core import imagegen
from genzoo_assets.core.checks import image_resolution
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs.gpu import on_leased_gpu
from genzoo_assets.defs.io import (
    backend_metadata,
    check_result,
    image_markdown,
    progress_log,
    read_merged,
    write_partition,
)
from genzoo_assets.defs.partition_range import MODEL_BACKFILL, each_partition
from genzoo_assets.defs.partitions import sample_partitions
from genzoo_assets.defs.resources import (
    GPU_STEP,
    CheckedFields,
    GenZooSettings,
    at_least,
    between,
    checked,
    fail_fast_on_input_errors,
)

UPSTREAM = [
    "prompts",
    "captions",
    "control_renders",
    "pose_params",
    "shape_params",
]  # read, so declared (+ species)


class SpeedConfig(dg.PermissiveConfig):
    """``core.imagegen.speed.SpeedOptions`` as run config (the launchpad shows these fields).

    Permissive so that an unknown option reaches the check below, which names it in one line
    (Dagster's own schema check would list the whole schema). The defaults are lossless; the lossy
    options and ``reproduce_notebook`` are recorded in every image's provenance.
    """

    reproduce_notebook: bool = False  # GenZoo's notebook settings: deterministic, slower
    compile: str = "off"  # off | regional (compile_repeated_blocks) | full
    fp8_storage: bool = False  # lossy: float8 transformer/ControlNet weights
    vae_tiling: bool = False  # lossy: tiled VAE decoding

    @pydantic.model_validator(mode="before")
    @classmethod
    def _known_options(cls, data):
        if isinstance(data, dict):
            imagegen.SpeedOptions.from_value(data)  # unknown names, compile mode, combinations
        return data

    def options(self) -> imagegen.SpeedOptions:
        return imagegen.SpeedOptions.from_value(
            {name: getattr(self, name) for name in imagegen.SpeedOptions.__dataclass_fields__}
        )


class ImageConfig(CheckedFields, dg.Config):
    backend: str = "render"  # render (offline default) | flux_controlnet (the paper's)
    base_model: str = ""  # flux_controlnet: FLUX.1-dev directory or HF repo id in the local cache
    canny_controlnet: str = ""
    depth_controlnet: str = ""
    steps: int = 28
    guidance: float = 3.5
    batch_size: int = 4
    max_sequence_length: int = (
        0  # T5 prompt tokens; 0: the family's default (FLUX.1-dev 512, SD3 256)
    )
    flag_threshold: float = imagegen.DEFAULT_THRESHOLD
    speed: SpeedConfig = SpeedConfig()  # diffusers backends only; see core/imagegen/speed.py

    _counts = checked("steps", "batch_size", check=at_least(1))
    _non_negative = checked("guidance", "max_sequence_length", check=at_least(0))
    _threshold = checked("flag_threshold", check=between(0.0, 1.0))


def _generator_options(config: ImageConfig, settings: GenZooSettings) -> dict:
    speed = config.speed.options()
    if config.backend in ("render", "render_composite"):
        if speed != imagegen.SpeedOptions():
            raise InputError(
                f"ImageConfig.speed = {speed.as_params()} applies to the diffusers backends "
                f"{imagegen.GENERATIVE}; backend {config.backend!r} has no speed options"
            )
        return {
            "subdivisions": settings.subdivisions
        }  # the control renders' mesh, so the albedo fills their mask
    return {
        "base_model": config.base_model,
        "canny_controlnet": config.canny_controlnet,
        "depth_controlnet": config.depth_controlnet,
        "steps": config.steps,
        "guidance": config.guidance,
        "batch_size": config.batch_size,
        "device": settings.torch_device(),
        "resolution": settings.resolution,
        "speed": speed,
        **(
            {"max_sequence_length": config.max_sequence_length}
            if config.max_sequence_length
            else {}
        ),
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "images",
            deps=[*UPSTREAM, "species"],
            group_name="images",
            kinds={"pytorch", "parquet"},
            description="One image per sample, aligned with its controls; misaligned ones are kept "
            "and flagged; blank ones (one colour) are left out and counted (`blank_images`).",
        )
    ],
    partitions_def=sample_partitions,
    check_specs=[
        dg.AssetCheckSpec(
            "images_at_control_resolution",
            asset="images",
            description="every stored image has the size of its control render, the pixel frame "
            "of its keypoints and bbox",
        ),
        dg.AssetCheckSpec(
            "alignment_above_threshold",
            asset="images",
            description="generated images match their Canny edges and mask (FLUX/SD3 only: the "
            "offline render backend is aligned by construction, so it is not run)",
        ),
    ],
    can_subset=True,
    backfill_policy=MODEL_BACKFILL,
    **GPU_STEP,
)
@fail_fast_on_input_errors
@on_leased_gpu
def images(context: dg.AssetExecutionContext, config: ImageConfig, settings: GenZooSettings):
    root = settings.root()
    resolution: dict[str, int] = {}

    def one(species_key: str, shard: str):
        rows = read_merged(root, UPSTREAM, species_key, shard)
        # Made per partition, as in a run of one; a model-backed generator's pipeline is resident.
        generator = imagegen.make_generator(config.backend, **_generator_options(config, settings))
        df = imagegen.generate_partition(
            rows,
            generator,
            root,
            threshold=config.flag_threshold,
            batch_size=config.batch_size,
            progress=progress_log(context, f"{species_key}/{shard}: generated images"),
            body_model=settings.body(),
            species_info=_species_info(root, species_key),
            base_seed=settings.base_seed,
            run_id=context.run.run_id,
        )
        blank = df.attrs.get("blank_samples", {})
        if blank:
            context.log.warning(
                f"{species_key}/{shard}: {len(blank)} of {len(rows)} generated images were blank "
                f"and are not stored (first: sample {next(iter(blank))}, "
                f"{next(iter(blank.values()))}); those samples have no image"
            )
        path = write_partition(root, "images", species_key, shard, df)
        sheet = imagegen.write_image_sheet(
            df.merge(rows[["sample_id", "canny_path"]], on="sample_id"),
            root,
            f"{species_key}__{shard}",
        )
        resolution.update(zip(rows["sample_id"], rows["render_resolution"]))
        return (df, generator.name), {
            "num_samples": len(df),
            "blank_images": len(blank),
            "blank_ids": dg.MetadataValue.json(list(blank)[:50]),
            **backend_metadata(df["image_backend"]),
            "flagged": int(df["flagged"].sum()),
            "mean_alignment": float(df["alignment_score"].mean()),
            "path": dg.MetadataValue.path(str(path)),
            "contact_sheet": image_markdown(sheet, "generated images"),
            "contact_sheet_path": dg.MetadataValue.path(str(sheet)),
        }

    run = each_partition(context, "images", one)
    df = pd.concat([out for out, _ in run.outputs], ignore_index=True)
    checks = [check_result("images_at_control_resolution", image_resolution(df, resolution, root))]
    flagged = int(df["flagged"].sum())
    if any(name in imagegen.GENERATIVE for _, name in run.outputs):
        checks.append(
            dg.AssetCheckResult(
                check_name="alignment_above_threshold",
                passed=flagged == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "flagged": flagged,
                    "threshold": config.flag_threshold,
                    "flagged_ids": dg.MetadataValue.json(
                        df.loc[df["flagged"], "sample_id"].tolist()[:50]
                    ),
                },
            )
        )
    yield dg.MaterializeResult(
        asset_key="images",
        metadata={
            **run.metadata,
            **backend_metadata(df["image_backend"]),
            "flagged": flagged,
            "mean_alignment": float(df["alignment_score"].mean()),
        },
        check_results=checks,
    )


def _species_info(root, species_key: str) -> dict:
    """The species' names for the prompts' fallback and provenance (a dog's breed too)."""
    row = frame.species_row(root, species_key)
    return {
        species_key: {
            k: row[k] for k in ("common_name", "scientific_name", "genus", "family", "order")
        }
        | ({"breed": row["common_name"]} if row["is_dog"] else {})
    }
