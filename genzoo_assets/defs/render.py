"""Control renders (normal RGB, depth, Canny, mask) and 2D ground truth, with a contact-sheet preview."""

import dagster as dg

from genzoo_assets.core.checks import REPROJECTION_TOL_PX, keypoint_reprojection
from genzoo_assets.core.render.contact_sheet import write_contact_sheet
from genzoo_assets.defs.gpu import on_leased_gpu
from genzoo_assets.defs.io import (
    check_result,
    image_markdown,
    progress_log,
    read_merged,
    write_partition,
)
from genzoo_assets.defs.partitions import sample_partitions, species_and_shard
from genzoo_assets.defs.resources import (
    GPU_STEP,
    CheckedFields,
    GenZooSettings,
    check_resolution,
    checked,
    fail_fast_on_input_errors,
)
from genzoo_assets.defs.sampling import pose_params


class RenderConfig(CheckedFields, dg.Config):
    resolution: int = 0  # 0: the settings' resolution (GENZOO_RESOLUTION, 1024 by default)

    _resolution = checked(
        "resolution", check=lambda cls, v: v if v == 0 else check_resolution(cls, v)
    )


@dg.asset(
    partitions_def=sample_partitions,
    deps=[pose_params, "shape_params"],  # both are read
    group_name="controls",
    kinds={"pytorch", "parquet"},
    **GPU_STEP,
    check_specs=[
        dg.AssetCheckSpec(
            "keypoints_reproject",
            asset="control_renders",
            description=f"stored 2D keypoints re-project from the stored betas, pose, translation and camera "
            f"within {REPROJECTION_TOL_PX} px (the body model re-run, then the one projection function)",
        )
    ],
)
@fail_fast_on_input_errors
@on_leased_gpu
def control_renders(
    context: dg.AssetExecutionContext, config: RenderConfig, settings: GenZooSettings
):
    """pyrender offscreen (EGL), one renderer per partition; files written atomically."""
    from genzoo_assets.core.render.partition import render_partition  # pyrender: in the step only

    species_key, shard = species_and_shard(context)
    root = settings.root()
    rows = read_merged(root, ["pose_params", "shape_params"], species_key, shard)
    resolution = config.resolution or settings.resolution

    df = render_partition(
        rows,
        settings.body(),
        root,
        resolution=resolution,
        subdivisions=settings.subdivisions,
        progress=progress_log(context, "rendered samples"),
    )
    path = write_partition(root, "control_renders", species_key, shard, df)
    sheet = write_contact_sheet(df, root)
    stored = read_merged(
        root, ["control_renders", "pose_params", "shape_params"], species_key, shard
    )
    reprojection = keypoint_reprojection(stored, settings.body())
    return dg.MaterializeResult(
        metadata={
            "num_samples": len(df),
            "resolution": resolution,
            "subdivisions": settings.subdivisions,
            "mean_visible_keypoints": float(df["keypoints_vis"].map(sum).mean()),
            "path": dg.MetadataValue.path(str(path)),
            "contact_sheet": image_markdown(sheet, "control renders"),
            "contact_sheet_path": dg.MetadataValue.path(str(sheet)),
        },
        check_results=[check_result("keypoints_reproject", reprojection)],
    )
