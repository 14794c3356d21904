"""`genzoo species list | add NAME | import-mdd PATH`: edit the species table from the shell.

`add` also registers the species' partition in the project's Dagster instance, so it shows up in
the web UI at once; the `new_species_sensor` then requests its missing partitions.
"""

from __future__ import annotations

import json

from genzoo_assets.core.paths import data_dir
from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs.resources import GenZooSettings


def _sizes() -> dict:
    s = GenZooSettings()
    return {"dog_fraction": s.dog_fraction, "dataset_size": s.dataset_size, "samples_per_shard": s.samples_per_shard}


def _register(key: str) -> None:
    from genzoo_assets.defs.partitions import SPECIES_PARTITIONS_NAME
    from genzoo_assets.instance import project_instance

    instance = project_instance()
    if key not in instance.get_dynamic_partitions(SPECIES_PARTITIONS_NAME):
        instance.add_dynamic_partitions(SPECIES_PARTITIONS_NAME, [key])


def run(args) -> int:
    root = data_dir()
    if args.species_command == "list":
        table = frame.read_species_table(root) if frame.species_table_path(root).exists() else frame.build_table(root, **_sizes())
        cols = ["key", "scientific_name", "common_name", "order", "family", "is_dog", "planned_samples"]
        if args.json:
            print(table[cols].to_json(orient="records"))
        else:
            print(table[cols].to_string(index=False))
            print(f"{len(table)} species ({int(table['is_dog'].sum())} dog breeds)")
        return 0
    if args.species_command == "add":
        row, newly = frame.add_species_by_name(root, args.name, **_sizes())
        _register(row["key"])
        if args.json:
            print(json.dumps({"added": newly, **{k: row[k] for k in ("key", "scientific_name", "common_name", "order", "family")},
                              "planned_samples": int(row["planned_samples"])}))
        else:
            verb = "added" if newly else "already in the table:"
            print(f"{verb} {row['common_name'] or row['scientific_name']} ({row['scientific_name']}), key {row['key']}, "
                  f"{int(row['planned_samples'])} planned samples")
        return 0
    table, counts = frame.import_mdd(root, args.path, **_sizes())
    if args.json:
        print(json.dumps({"species": int((~table["is_dog"]).sum()), "dog_breeds": int(table["is_dog"].sum()),
                          "by_order": dict(zip(counts["order"], counts["species"].astype(int)))}))
    else:
        print(counts.to_string(index=False))
        print(f"{int((~table['is_dog']).sum())} species from {args.path} + {int(table['is_dog'].sum())} dog breeds")
    return 0
