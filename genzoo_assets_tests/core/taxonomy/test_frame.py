import multiprocessing as mp

import pandas as pd

from genzoo_assets.core.taxonomy import frame

SIZES = {"dataset_size": 2000, "samples_per_shard": 4}
# Mammals of the bundled MDD extract that the default species list does not have.
NEW = [
    "Mephitis macroura",
    "Nandinia binotata",
    "Conepatus leuconotus",
    "Galictis vittata",
    "Eira barbara",
    "Ictonyx striatus",
]


def _add(root, name, barrier):
    barrier.wait()  # all at once
    frame.add_species_by_name(root, name, **SIZES)
    frame.refresh_species_table(root, **SIZES)  # as each command's `species` materialisation does


def test_concurrent_adds_and_table_rebuilds_lose_no_species(tmp_path):
    root = tmp_path / "data"
    frame.refresh_species_table(root, **SIZES)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(len(NEW))
    procs = [ctx.Process(target=_add, args=(root, name, barrier)) for name in NEW]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * len(NEW)
    added = pd.read_parquet(root / "species" / "added.parquet")
    assert sorted(added["scientific_name"]) == sorted(NEW)
    assert set(NEW) <= set(frame.read_species_table(root)["scientific_name"])


def test_add_records_the_request_and_leaves_the_table_to_the_asset(tmp_path):
    root = tmp_path / "data"
    frame.refresh_species_table(root, **SIZES)
    before = frame.species_table_path(root).stat()
    row, newly = frame.add_species_by_name(root, "Hooded Skunk", **SIZES)
    assert newly and row["key"] == "mephitis-macroura"
    after = frame.species_table_path(root).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (
        frame.add_species_by_name(root, "mephitis_macroura", **SIZES)[1] is False
    )  # a request is idempotent
    assert len(pd.read_parquet(root / "species" / "added.parquet")) == 1
    assert "mephitis-macroura" in set(frame.refresh_species_table(root, **SIZES)["key"])
