"""Materialise one species × shard partition through Dagster in its own process (a test helper).

``python -m genzoo_assets_tests.robustness.partition_runner DATA_DIR SPECIES SHARD SAMPLES RES ASSET...``
runs against the persistent instance in ``$DAGSTER_HOME``, so a test can SIGKILL it mid-step and
rerun the same partition afterwards against the same run history. Runs go through
``pool_slots.materialize``, as the `genzoo` commands' runs do.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def assets_by_name() -> dict:
    from genzoo_assets.defs.render import control_renders
    from genzoo_assets.defs.sampling import pose_params, shape_params
    from genzoo_assets.defs.species import species

    return {
        a.key.to_user_string(): a for a in (species, shape_params, pose_params, control_renders)
    }


def main(argv: list[str]) -> int:
    import dagster as dg

    from genzoo_assets.app.run import materialize
    from genzoo_assets.defs.partitions import sample_partition_key
    from genzoo_assets.defs.resources import GenZooSettings

    data, species_key, shard, samples, resolution, *names = argv
    settings = GenZooSettings(
        data_dir=data, samples_per_shard=int(samples), resolution=int(resolution)
    )
    table = assets_by_name()
    instance = dg.DagsterInstance.get()
    if "species" in names:
        materialize([table["species"]], instance, resources={"settings": settings})
        names = [n for n in names if n != "species"]
    print("started", flush=True)
    result = materialize(
        [table[n] for n in names],
        instance,
        resources={"settings": settings},
        partition_key=sample_partition_key(species_key, shard),
    )
    print("success" if result.success else "failure", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
