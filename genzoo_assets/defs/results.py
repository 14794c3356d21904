"""`results.duckdb`: the benchmark's per-sample metrics and the regressor's training lineage, queryable
beside the catalog (`genzoo catalog sql` attaches it) without the catalog reading its descendants."""

import dagster as dg

from genzoo_assets.core import layout
from genzoo_assets.core.catalog import results as results_db
from genzoo_assets.defs.benchmark import benchmark
from genzoo_assets.defs.catalog import EAGER_ALLOW_MISSING
from genzoo_assets.defs.partitions import TEST_SETS
from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.defs.training import regressor


@dg.asset(
    deps=[regressor, benchmark],
    group_name="evaluation",
    kinds={"duckdb"},
    pool="duckdb",
    automation_condition=EAGER_ALLOW_MISSING,
)
def results(context: dg.AssetExecutionContext, settings: GenZooSettings) -> dg.MaterializeResult:
    """`metrics` (every test set's per-sample rows, with `test_set`) and `training_lineage` (which catalog
    rows trained the checkpoint), rebuilt in full from `benchmark/*/predictions.parquet` and
    `regressor/lineage.parquet`; query them with `genzoo catalog sql`, joined with `samples`."""
    root = settings.root()
    predictions = {name: layout.predictions_file(root, name) for name in TEST_SETS}
    path = results_db.refresh_results(root, predictions, layout.lineage_file(root))
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "tables": dg.MetadataValue.json(results_db.result_tables(root)),
            "test_sets": dg.MetadataValue.json(
                sorted(n for n, p in predictions.items() if p.is_file())
            ),
        }
    )
