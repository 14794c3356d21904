"""The DuckDB catalog: a snapshot of every Parquet partition, updated in place for the partitions that changed."""

import dagster as dg
import pydantic

from genzoo_assets.core.catalog import query, refresh
from genzoo_assets.defs.images import images
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species
from genzoo_assets.defs.text import captions, prompts

# Eager, but not blocked by the (many) species × shard partitions nobody has asked for yet.
EAGER_ALLOW_MISSING = (
    dg.AutomationCondition.eager()
    .without(~dg.AutomationCondition.any_deps_missing())
    .with_label("eager_allow_missing")
)


class CatalogRefresh(dg.Config):
    full: bool = pydantic.Field(
        default=False, description="rebuild from every Parquet file, not only changed folders"
    )


@dg.asset(
    deps=[species, shape_params, pose_params, control_renders, captions, prompts, images],
    group_name="catalog",
    kinds={"duckdb"},
    pool="duckdb",
    automation_condition=EAGER_ALLOW_MISSING,
)
def catalog(
    context: dg.AssetExecutionContext, config: CatalogRefresh, settings: GenZooSettings
) -> dg.MaterializeResult:
    """`catalog.duckdb` (`species`, `samples`, one view per stage); query it with `genzoo catalog sql`.
    Updated in place for the partitions that changed, in one transaction (readers wait for it)."""
    root = settings.root()
    path = refresh.refresh_catalog(root, full=config.full)
    samples = species = 0  # a catalog of the species table alone has no `samples` view yet
    if "samples" in query.catalog_views(root):
        samples, species = (
            query.query(
                "SELECT count(*) AS samples, count(DISTINCT species) AS species FROM samples",
                data_dir=root,
                with_results=False,
            )
            .iloc[0]
            .tolist()
        )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "samples": int(samples),
            "species": int(species),
        }
    )
