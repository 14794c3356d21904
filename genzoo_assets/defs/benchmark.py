"""The benchmark: the trained regressor on held-out synthetic species and, when configured, Animal3D."""

import os

import dagster as dg
import torch

from genzoo_assets.core.body import load_body_model
from genzoo_assets.core.catalog import duckdb_catalog
from genzoo_assets.core.evaluate import (
    benchmark_set_from_animal3d, load_animal3d, mean_pose_baseline, run_benchmark,
)
from genzoo_assets.core.evaluate.adapters import regressor_predict_fn
from genzoo_assets.core.evaluate.gallery import select_gallery
from genzoo_assets.core.evaluate.report import write_report
from genzoo_assets.core.evaluate.synthetic import heldout_benchmark_set, training_pose_statistics
from genzoo_assets.core.regressor.model import build_regressor, load_regressor
from genzoo_assets.defs.io import frame_markdown, image_markdown
from genzoo_assets.defs.partitions import test_set_partitions
from genzoo_assets.defs.resources import GPU_OP_TAGS, CheckedFields, GenZooSettings, at_least, checked
from genzoo_assets.defs.training import regressor

SUMMARY_COLUMNS = ["method", "pck@0.10", "pck@0.15", "pck@0.5", "s_mpjpe", "pa_mpjpe", "s_v2v", "pa_v2v"]


class BenchmarkConfig(CheckedFields, dg.Config):
    animal3d_json: str = os.environ.get("GENZOO_ANIMAL3D_JSON", "")  # Animal3D's test.json
    animal3d_images: str = ""  # folder its img_path/mask_path are relative to (default: the JSON's)
    smal_model: str = os.environ.get("GENZOO_SMAL_MODEL", "")  # SMAL file for Animal3D's 41 betas
    batch_size: int = 64

    _batch_size = checked("batch_size", check=at_least(1))


def _test_set(name: str, config: BenchmarkConfig, settings: GenZooSettings):
    root = settings.root()
    if name == "heldout":
        return heldout_benchmark_set(root / "shards"), settings.body()
    if not config.animal3d_json:
        raise ValueError("test set 'animal3d' needs its release: set animal3d_json (or GENZOO_ANIMAL3D_JSON) "
                         "to Animal3D's test.json and smal_model to the SMAL model file")
    body = load_body_model(config.smal_model) if config.smal_model else settings.body()
    a3d = load_animal3d(config.animal3d_json, body, image_root=config.animal3d_images or None)
    return benchmark_set_from_animal3d(a3d), body


@dg.asset(partitions_def=test_set_partitions, deps=[regressor], group_name="evaluation", kinds={"pytorch"},
          pool="gpu", op_tags=GPU_OP_TAGS)
def benchmark(context: dg.AssetExecutionContext, config: BenchmarkConfig, settings: GenZooSettings):
    """PCK@{0.10,0.15,0.5}, S-/PA-MPJPE, S-/PA-V2V against the mean-pose and untrained baselines."""
    root = settings.root()
    test_set, body = _test_set(context.partition_key, config, settings)
    model = load_regressor(root / "regressor" / "checkpoint.pt")
    torch.manual_seed(settings.base_seed)
    untrained = build_regressor(model.config)
    hw = tuple(model.config.image_size)
    poses, betas = training_pose_statistics(root / "shards")
    result = run_benchmark(
        test_set, regressor_predict_fn(model, hw), body, method_name="genzoo", batch_size=config.batch_size,
        baselines={"mean_pose": mean_pose_baseline(poses, betas, body), "untrained": regressor_predict_fn(untrained, hw)},
    )
    out_dir = root / "benchmark" / context.partition_key
    paths = write_report(result, out_dir, select_gallery(result, test_set, body))
    duckdb_catalog.refresh_catalog(root)  # per-sample results join `samples` in the `metrics` view
    overall = result.summary[result.summary["group"] == "overall"]
    context.log.info("\n" + overall[SUMMARY_COLUMNS].to_string(index=False))
    return dg.MaterializeResult(metadata={
        "num_samples": len(test_set.sample_ids),
        "summary": frame_markdown(overall[SUMMARY_COLUMNS]),
        "by_family": frame_markdown(result.summary[result.summary["group"] == "family"]),
        "report": dg.MetadataValue.path(str(paths["html"])),
        "pck_curve": image_markdown(paths["pck_curve"], "PCK vs threshold"),
        **{f"{m}_pa_mpjpe": float(v) for m, v in zip(overall["method"], overall["pa_mpjpe"])},
    })
