"""The species table: GenZoo's sampling frame, and the source of the dynamic species partitions."""

import dagster as dg

from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs.io import frame_markdown
from genzoo_assets.defs.partitions import SPECIES_PARTITIONS_NAME
from genzoo_assets.defs.resources import GenZooSettings


@dg.asset(group_name="taxonomy", kinds={"parquet"})
def species(context: dg.AssetExecutionContext, settings: GenZooSettings) -> dg.MaterializeResult:
    """Bundled Laurasiatheria species (or an imported MDD release) + 247 dog breeds + species added
    with `genzoo species add`, with each species' share of the dataset. The one writer of
    `species.parquet` and the one place species partitions are registered."""
    root = settings.root()
    new_keys: list[str] = []

    def register(
        table,
    ) -> None:  # before the table is written, so no reader sees an unregistered species
        existing = set(context.instance.get_dynamic_partitions(SPECIES_PARTITIONS_NAME))
        new_keys.extend(k for k in table["key"] if k not in existing)
        if new_keys:
            context.instance.add_dynamic_partitions(SPECIES_PARTITIONS_NAME, new_keys)

    table = frame.refresh_species_table(
        root,
        dog_fraction=settings.dog_fraction,
        dataset_size=settings.dataset_size,
        samples_per_shard=settings.samples_per_shard,
        before_write=register,
    )
    by_order = (
        table.groupby("order").size().sort_values(ascending=False).rename("species").reset_index()
    )
    return dg.MaterializeResult(
        metadata={
            "num_species": len(table),
            "num_dog_breeds": int(table["is_dog"].sum()),
            "new_partitions": len(new_keys),
            "dataset_size": settings.dataset_size,
            "by_order": frame_markdown(by_order),
            "preview": frame_markdown(
                table[["key", "common_name", "order", "family", "planned_samples"]]
            ),
            "path": dg.MetadataValue.path(str(frame.species_table_path(root))),
        }
    )
