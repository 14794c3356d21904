"""`genzoo species list | add NAME | import-mdd PATH`: change the species table's inputs from the shell.

`add` and `import-mdd` record the request in the table's inputs (``added.parquet``,
``frame.parquet``, under the species lock), then materialise the `species` asset in the project's
Dagster instance, which rewrites ``species.parquet`` and registers the new partitions; the
`new_species_sensor` then requests their missing shards. With ``--no-materialize`` they only
record, and the next `species` materialisation (UI, `genzoo species add`, the demo) picks it up.
"""

from __future__ import annotations

import json

from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs.resources import GenZooSettings, settings_from_env


def _sizes(s: GenZooSettings) -> dict:
    return {
        "dog_fraction": s.dog_fraction,
        "dataset_size": s.dataset_size,
        "samples_per_shard": s.samples_per_shard,
    }


def materialize_species(settings: GenZooSettings) -> None:
    """Run the `species` asset in the project instance: the table's only writer, the partitions' only registrar."""
    from genzoo_assets.app.run import run_assets
    from genzoo_assets.defs.species import species

    run_assets([species], settings)


def _after_record(args, settings: GenZooSettings) -> str:
    if args.no_materialize:
        return "recorded; materialise the `species` asset to update the table"
    materialize_species(settings)
    return f"species table {frame.species_table_path(settings.root())} updated"


def run(args) -> int:
    settings = settings_from_env(data_dir=args.data_dir)
    root = settings.root()
    if args.species_command == "list":
        exists = frame.species_table_path(root).exists()
        table = (
            frame.read_species_table(root)
            if exists
            else frame.build_table(root, **_sizes(settings))
        )
        cols = [
            "key",
            "scientific_name",
            "common_name",
            "order",
            "family",
            "is_dog",
            "planned_samples",
        ]
        if args.json:
            print(table[cols].to_json(orient="records"))
        else:
            print(table[cols].to_string(index=False))
            print(f"{len(table)} species ({int(table['is_dog'].sum())} dog breeds)")
        return 0
    if args.species_command == "add":
        row, newly = frame.add_species_by_name(root, args.name, **_sizes(settings))
        status = _after_record(args, settings)
        if args.json:
            print(
                json.dumps(
                    {
                        "added": newly,
                        **{
                            k: row[k]
                            for k in ("key", "scientific_name", "common_name", "order", "family")
                        },
                        "planned_samples": int(row["planned_samples"]),
                    }
                )
            )
        else:
            verb = "added" if newly else "already in the table:"
            print(
                f"{verb} {row['common_name'] or row['scientific_name']} ({row['scientific_name']}), key {row['key']}, "
                f"{int(row['planned_samples'])} planned samples; {status}"
            )
        return 0
    table, counts = frame.import_mdd(root, args.path, **_sizes(settings))
    status = _after_record(args, settings)
    if args.json:
        print(
            json.dumps(
                {
                    "species": int((~table["is_dog"]).sum()),
                    "dog_breeds": int(table["is_dog"].sum()),
                    "by_order": dict(zip(counts["order"], counts["species"].astype(int))),
                }
            )
        )
    else:
        print(counts.to_string(index=False))
        print(
            f"{int((~table['is_dog']).sum())} species from {args.path} + "
            f"{int(table['is_dog'].sum())} dog breeds; {status}"
        )
    return 0
