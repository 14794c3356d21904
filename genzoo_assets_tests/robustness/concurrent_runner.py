"""Eight species partitions materialised at once by eight processes sharing one data directory.

``python -m genzoo_assets_tests.robustness.concurrent_runner DATA_DIR SPECIES...`` imports the
code and builds the body model once, then forks one process per species; all start together (a
barrier) and each runs shape_params + pose_params through ``dg.materialize``, then refreshes and
queries the DuckDB catalog, as concurrent Dagster step processes do. Prints one JSON line each.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _child(data: str, species_key: str, barrier, queue) -> None:
    import dagster as dg

    from genzoo_assets.core.catalog import query, refresh
    from genzoo_assets.defs.partitions import sample_partition_key
    from genzoo_assets.defs.resources import GenZooSettings
    from genzoo_assets.defs.sampling import pose_params, shape_params

    report = {"species": species_key, "success": False, "errors": []}
    settings = GenZooSettings(data_dir=data, samples_per_shard=2, resolution=64)
    try:
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("species", [species_key])
            barrier.wait(timeout=60)
            result = dg.materialize(
                [shape_params, pose_params],
                instance=instance,
                resources={"settings": settings},
                partition_key=sample_partition_key(species_key, "000"),
                raise_on_error=False,
            )
            report["errors"] += [
                str(e.event_specific_data.error) for e in result.all_events if e.is_step_failure
            ]
            refreshes = 0
            for _ in range(3):  # overlap as many refreshes and reads as the siblings allow
                refresh.refresh_catalog(data)
                refreshes += 1
                rows = query.query(
                    "SELECT species, count(*) AS n FROM samples GROUP BY 1", data_dir=data
                )
            report.update(success=result.success, refreshes=refreshes, species_seen=len(rows))
    except Exception:  # reported to the parent, which asserts on it
        report["errors"].append(traceback.format_exc())
    queue.put(json.dumps(report))


def main(argv: list[str]) -> int:
    data, *species = argv
    import torch

    from genzoo_assets.defs.resources import GenZooSettings
    from genzoo_assets.defs.sampling import pose_params, shape_params  # noqa: F401  imported once, before forking

    # One intra-op thread before any torch op: no OpenMP pool exists to deadlock the forked children,
    # which then inherit the body model built here instead of each building it.
    torch.set_num_threads(1)
    GenZooSettings(data_dir=data).body()

    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(len(species)), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(data, key, barrier, queue)) for key in species]
    for p in procs:
        p.start()
    reports = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    for line in reports:
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
