"""The benchmark: the trained regressor on held-out synthetic species and, when configured, Animal3D."""

import dagster as dg

from genzoo_assets.core import layout
from genzoo_assets.core.errors import InputError
from genzoo_assets.defs.gpu import on_leased_gpu
from genzoo_assets.defs.io import frame_markdown, image_markdown
from genzoo_assets.defs.partitions import test_set_partitions
from genzoo_assets.defs.resources import (
    GPU_OP_TAGS,
    Animal3DRelease,
    CheckedFields,
    GenZooSettings,
    at_least,
    checked,
)
from genzoo_assets.defs.training import dataset_shards, regressor

SUMMARY_COLUMNS = [
    "method",
    "pck@0.10",
    "pck@0.15",
    "pck_crop@0.5",
    "auc",
    "s_mpjpe",
    "pa_mpjpe",
    "s_v2v",
    "pa_v2v",
]


class BenchmarkConfig(CheckedFields, dg.Config):
    animal3d_json: str = (
        ""  # Animal3D's test.json ("": the `animal3d` resource's, GENZOO_ANIMAL3D_JSON)
    )
    animal3d_images: str = ""  # folder its img_path/mask_path are relative to (default: the JSON's)
    # SMAL's 41-beta model file: Animal3D's ground truth, separate from the regressor's body model.
    animal3d_smal_model: str = ""  # "": the `animal3d` resource's (GENZOO_ANIMAL3D_SMAL_MODEL)
    animal3d_keypoints_3d: str = (
        "smal"  # smal: the SMAL mesh's keypoints | json: the release's keypoint_3d (AniMer)
    )
    v2v: bool = True  # vertex metrics; false scores keypoints only (needed when the meshes' topologies differ)
    batch_size: int = 64

    _batch_size = checked("batch_size", check=at_least(1))


def _test_set(
    name: str, config: BenchmarkConfig, settings: GenZooSettings, release: Animal3DRelease
):
    """(test set, its ground-truth body model)."""
    from genzoo_assets.core.body import load_body_model
    from genzoo_assets.core.evaluate import benchmark_set_from_animal3d, load_animal3d
    from genzoo_assets.core.evaluate.synthetic import heldout_benchmark_set

    root = settings.root()
    if name in ("heldout", "val"):  # val: the validation species, what `sampling_plan` learns from
        return heldout_benchmark_set(layout.shards_dir(root), split=name), settings.body()
    animal3d_json = config.animal3d_json or release.animal3d_json
    smal_model = config.animal3d_smal_model or release.animal3d_smal_model
    if not animal3d_json:
        raise InputError(
            "test set 'animal3d' needs its release: set animal3d_json (or GENZOO_ANIMAL3D_JSON) "
            "to Animal3D's test.json"
        )
    if not smal_model:
        raise InputError(
            "test set 'animal3d' needs SMAL's 41-beta model for its ground truth: set "
            "animal3d_smal_model (or GENZOO_ANIMAL3D_SMAL_MODEL) to the SMAL model file"
        )
    smal = load_body_model(smal_model)
    a3d = load_animal3d(
        animal3d_json,
        smal,
        image_root=config.animal3d_images or None,
        keypoints_3d=config.animal3d_keypoints_3d,
    )
    return benchmark_set_from_animal3d(a3d), smal


@dg.asset(
    partitions_def=test_set_partitions,
    deps=[regressor, dataset_shards],
    group_name="evaluation",
    kinds={"pytorch"},
    pool="gpu",
    op_tags=GPU_OP_TAGS,
)
@on_leased_gpu
def benchmark(
    context: dg.AssetExecutionContext,
    config: BenchmarkConfig,
    settings: GenZooSettings,
    animal3d: Animal3DRelease,
):
    """PCK@{0.10,0.15,0.5}, AUC, S-/PA-MPJPE, S-/PA-V2V against the mean-pose and untrained baselines."""
    import torch

    from genzoo_assets.core.evaluate import mean_pose_baseline, run_benchmark
    from genzoo_assets.core.evaluate.adapters import regressor_predict_fn
    from genzoo_assets.core.evaluate.gallery import select_gallery
    from genzoo_assets.core.evaluate.report import write_report
    from genzoo_assets.core.evaluate.synthetic import training_pose_statistics
    from genzoo_assets.core.regressor.checkpoint import load_regressor
    from genzoo_assets.core.regressor.model import build_regressor

    root = settings.root()
    test_set, gt_body = _test_set(context.partition_key, config, settings, animal3d)
    body = settings.body()  # the regressor's: its betas and poses live in this model
    model = load_regressor(
        layout.checkpoint_file(root), body_model=body
    )  # refuses another body model
    torch.manual_seed(settings.base_seed)
    untrained = build_regressor(model.config)
    hw = tuple(model.config.image_size)
    poses, betas = training_pose_statistics(layout.shards_dir(root))
    result = run_benchmark(
        test_set,
        regressor_predict_fn(model, hw),
        body,
        method_name="genzoo",
        batch_size=config.batch_size,
        baselines={
            "mean_pose": mean_pose_baseline(poses, betas, body),
            "untrained": regressor_predict_fn(untrained, hw),
        },
        gt_body_model=gt_body,
        v2v=config.v2v,
    )
    out_dir = layout.benchmark_dir(root, context.partition_key)
    paths = write_report(result, out_dir, select_gallery(result, test_set, body))
    overall = result.summary[result.summary["group"] == "overall"]
    context.log.info("\n" + overall[SUMMARY_COLUMNS].to_string(index=False))
    return dg.MaterializeResult(
        metadata={
            "num_samples": len(test_set.sample_ids),
            "summary": frame_markdown(overall[SUMMARY_COLUMNS]),
            "by_family": frame_markdown(result.summary[result.summary["group"] == "family"]),
            "report": dg.MetadataValue.path(str(paths["html"])),
            "pck_curve": image_markdown(paths["pck_curve"], "PCK vs threshold"),
            "keypoint_sets": dg.MetadataValue.json(result.keypoint_sets),
            "images_without_visible_keypoints": int(overall["n_no_visible"].max()),
            **{f"{m}_pa_mpjpe": float(v) for m, v in zip(overall["method"], overall["pa_mpjpe"])},
        }
    )
