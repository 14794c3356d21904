"""`sampling_plan`: the regressor's validation errors over the sampling factors → a bounded
proposal for the next round and its species × shard partitions (`planning/`)."""

import dagster as dg
import pandas as pd

from genzoo_assets.core import layout
from genzoo_assets.core.planning.inputs import read_plan_inputs
from genzoo_assets.core.planning.plan import PlanSettings, make_plan, record_round, sample_errors
from genzoo_assets.defs.catalog import catalog
from genzoo_assets.defs.io import frame_markdown, image_markdown
from genzoo_assets.defs.resources import CheckedFields, GenZooSettings, at_least, checked, one_of
from genzoo_assets.defs.results import results


class PlanConfig(CheckedFields, dg.Config):
    ratio: float = 2.0  # bound: every level's proposal within [base / ratio, base × ratio]
    sharpness: float = 1.0  # proposal ∝ base × (error / mean error) ** sharpness, then bounded
    metric: str = "pa_mpjpe"  # per-sample validation error to chase (a PCK is used as 1 − PCK)
    round_shards: int = 8  # partitions the next round generates, shared over the training species
    # families never planned beyond the current export's held-out ones (its manifest; the test set)
    heldout_families: list[str] = []

    _ratio = checked("ratio", check=at_least(1.0))
    _sharpness = checked("sharpness", check=at_least(0.0))
    _round = checked("round_shards", check=at_least(1))
    _metric = checked(
        "metric",
        check=one_of("pa_mpjpe", "s_mpjpe", "pa_v2v", "s_v2v", "pck@0.10", "pck@0.15", "auc"),
    )


def _factor_table(plan: dict) -> pd.DataFrame:
    rows = [
        {"factor": f, "level": lvl, "base": b, "proposal": q, "error": e}
        for f, d in plan["factors"].items()
        for lvl, b, q, e in zip(d["levels"], d["base"], d["proposal"], d["error"])
    ]
    return pd.DataFrame(rows)


@dg.asset(deps=[results, catalog], group_name="planning", kinds={"duckdb", "json"})
def sampling_plan(context: dg.AssetExecutionContext, config: PlanConfig, settings: GenZooSettings):
    """Validation errors (never the test set's) joined with each sample's factors; shrunk per-level
    means; a proposal over species, posture, yaw and pitch bins bounded by `ratio`; the next
    round's partitions recorded in `planning/rounds.parquet` (once per distinct plan)."""
    from genzoo_assets.core.planning.plots import plot_error_by_factor, plot_weights  # matplotlib

    root = settings.root()
    inputs = read_plan_inputs(root, config.metric)
    plan_settings = PlanSettings(
        ratio=config.ratio,
        sharpness=config.sharpness,
        metric=config.metric,
        round_shards=config.round_shards,
        heldout_families=tuple(sorted({*inputs.heldout_families, *config.heldout_families})),
    )
    plan = make_plan(
        sample_errors(inputs.metrics, config.metric),
        inputs.samples,
        inputs.train_species,
        plan_settings,
    )
    plan = record_round(root, plan, inputs.partitions)
    previews = layout.previews_dir(root, "sampling_plan")
    errors_png = plot_error_by_factor(plan, previews / f"{plan['plan_id']}__errors.png")
    weights_png = plot_weights(plan, previews / f"{plan['plan_id']}__weights.png")
    context.log.info(f"plan {plan['plan_id']}: round {plan['round']}, {plan['partitions']}")
    return dg.MaterializeResult(
        metadata={
            "plan_id": plan["plan_id"],
            "round": plan["round"],
            "num_partitions": len(plan["partitions"]),
            "partitions": dg.MetadataValue.json(plan["partitions"]),
            "num_validation_samples": plan["inputs"]["n_samples"],
            "error_model": dg.MetadataValue.json(plan["model"]),
            "weights": frame_markdown(_factor_table(plan), max_rows=40),
            "error_by_factor": image_markdown(errors_png, "validation error by factor"),
            "weights_plot": image_markdown(weights_png, "proposal / base"),
            "path": dg.MetadataValue.path(str(layout.plan_file(root, plan["plan_id"]))),
        }
    )


plan_next_round = dg.define_asset_job(
    "plan_next_round",
    selection=dg.AssetSelection.assets(sampling_plan),
    description="Fit the error model on the validation errors and plan the next round.",
)
