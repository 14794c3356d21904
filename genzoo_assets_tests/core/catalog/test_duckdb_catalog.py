import os
import shutil
import subprocess
import sys
import threading
import time

import duckdb
import numpy as np
import pandas as pd
import pytest

from genzoo_assets.core.catalog import refresh as catalog_refresh
from genzoo_assets.core.catalog import store
from genzoo_assets.core.catalog.query import catalog_views, query, query_batches
from genzoo_assets.core.catalog.refresh import refresh_catalog
from genzoo_assets.core.catalog.store import CATALOG_NAME, CatalogMissingError, CatalogQueryError
from genzoo_assets.core.provenance import provenance, provenance_json
from genzoo_assets.core.tables import write_table_atomic
from genzoo_assets.core.taxonomy.table import add_species, build_species_table

SPECIES = ("panthera-leo", "dog-akita")
SHARDS = ("000", "001")
N = 4


def _base(species, shard):
    idx = list(range(int(shard) * N, (int(shard) + 1) * N))
    return {
        "sample_id": [f"{species}.{shard}.{i:05d}" for i in idx],
        "species": species,
        "shard": shard,
        "index": idx,
    }


def _shape(species, shard, offset=0.0):
    return pd.DataFrame(
        {
            **_base(species, shard),
            "seed": np.arange(N) + 7,
            "betas": [np.full(4, offset + i) for i in range(N)],
            "shape_backend": "prior",
            "provenance": provenance_json(provenance("shape_params", "prior")),
        }
    )


def _pose(species, shard):
    return pd.DataFrame(
        {
            **_base(species, shard),
            "yaw_deg": np.linspace(-90, 90, N),
            "keypoints_vis": [np.ones(3, bool)] * N,
            "pose_backend": "bank",
            "provenance": provenance_json(provenance("pose_params", "bank")),
        }
    )


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    crafted = {"is_dog": True, "common_name": "x'; DROP TABLE samples; --"}
    table = add_species(build_species_table(dataset_size=1000), crafted)
    write_table_atomic(table, root / "species" / "species.parquet")
    for sp in SPECIES:
        for sh in SHARDS:
            write_table_atomic(_shape(sp, sh), root / "shape_params" / sp / f"{sh}.parquet")
    write_table_atomic(
        _pose("panthera-leo", "000"), root / "pose_params" / "panthera-leo" / "000.parquet"
    )
    return root


def test_views_over_partitions(data):
    # A half-written file (atomic_path's temporary name) must stay invisible.
    (data / "pose_params" / "panthera-leo" / ".001.parquet.x1y2.tmp").write_bytes(b"PAR1 partial")
    path = refresh_catalog(data)
    assert path == data / "catalog.duckdb"
    assert set(catalog_views(data)) == {"species", "shape_params", "pose_params", "samples"}
    assert not [p for p in data.iterdir() if p.name.startswith(".")]
    counts = query("SELECT species, count(*) AS n FROM shape_params GROUP BY 1 ORDER BY 1", data)
    assert counts.to_dict("list") == {"species": ["dog-akita", "panthera-leo"], "n": [2 * N, 2 * N]}
    samples = query("SELECT * FROM samples ORDER BY sample_id", data)
    assert len(samples) == 4 * N and samples.columns.is_unique
    leo = samples[samples["species"] == "panthera-leo"]
    assert leo["yaw_deg"].notna().sum() == N and set(leo["common_name"]) == {"Lion"}
    assert set(samples.loc[samples["species"] == "dog-akita", "scientific_name"]) == {
        "Canis lupus familiaris"
    }
    prov = query(
        "SELECT provenance->>'$.shape_params.backend' AS s, provenance->>'$.pose_params.backend' AS p "
        "FROM samples WHERE yaw_deg IS NOT NULL LIMIT 1",
        data,
    )
    assert prov.iloc[0].tolist() == ["prior", "bank"]
    fam = query(
        "SELECT sp.family, count(*) AS n FROM shape_params s JOIN species sp ON sp.key = s.species "
        "GROUP BY 1 ORDER BY 1",
        data,
    )
    assert fam.to_dict("list") == {"family": ["Canidae", "Felidae"], "n": [2 * N, 2 * N]}


def test_rewriting_a_partition_never_duplicates(data):
    refresh_catalog(data)
    write_table_atomic(
        _shape("panthera-leo", "001", offset=100.0),
        data / "shape_params" / "panthera-leo" / "001.parquet",
    )
    refresh_catalog(data)  # the catalog is a snapshot: rewritten partitions show after a refresh
    again = query(
        "SELECT count(*) AS n, count(DISTINCT sample_id) AS u, max(betas[1]) AS b FROM shape_params",
        data,
    )
    assert again.iloc[0].tolist() == [4 * N, 4 * N, 100.0 + N - 1]
    write_table_atomic(
        _shape("dog-akita", "002"), data / "shape_params" / "dog-akita" / "002.parquet"
    )
    refresh_catalog(data)
    assert query("SELECT count(*) AS n FROM samples", data)["n"][0] == 5 * N


def test_query_is_read_only(data):
    refresh_catalog(data)
    for sql in (
        "DROP VIEW samples",
        "CREATE TABLE t AS SELECT 1",
        "COPY species TO 'out.csv'",
        "ATTACH 'other.duckdb' AS o",
        "SELECT 1; DROP VIEW species",
    ):
        with pytest.raises(CatalogQueryError, match="read-only|one statement"):
            query(sql, data)
    assert len(query("SELECT * FROM species WHERE common_name LIKE 'x''%'", data)) == 1
    assert "samples" in set(query("SHOW TABLES", data)["name"])
    with pytest.raises(CatalogQueryError, match="no_such_view"):
        query("SELECT * FROM no_such_view", data)


def test_missing_or_moved_catalog_is_an_error_naming_the_refresh(data, tmp_path):
    """Readers never build the catalog: only the `catalog` asset (refresh_catalog) writes it."""
    with pytest.raises(CatalogMissingError, match="no catalog in .*genzoo catalog refresh"):
        query("SELECT count(*) AS n FROM shape_params", data)
    assert not (data / CATALOG_NAME).exists()
    refresh_catalog(data)
    assert query("SELECT count(*) AS n FROM shape_params", data)["n"][0] == 4 * N
    moved = tmp_path / "moved"
    shutil.move(data, moved)
    with pytest.raises(
        CatalogMissingError, match=f"was made for {data.as_posix()}.*genzoo catalog refresh"
    ):
        query("SELECT count(*) AS n FROM samples", moved)
    refresh_catalog(moved)
    assert query("SELECT count(*) AS n FROM samples", moved)["n"][0] == 4 * N


def test_refresh_while_reader_holds_catalog(data):
    path = refresh_catalog(data)
    reader = duckdb.connect(str(path), read_only=True)
    try:
        write_table_atomic(
            _pose("dog-akita", "000"), data / "pose_params" / "dog-akita" / "000.parquet"
        )
        refresh_catalog(data)
        assert (
            reader.execute("SELECT count(*) FROM pose_params").fetchone()[0] == N
        )  # its own snapshot
    finally:
        reader.close()
    assert query("SELECT count(yaw_deg) AS n FROM samples", data)["n"][0] == 2 * N


def test_empty_data_dir(tmp_path):
    refresh_catalog(tmp_path)
    assert catalog_views(tmp_path) == []


def test_explicit_write_mode_objects_do_not_survive_a_refresh(data):
    refresh_catalog(data)
    query(
        "CREATE VIEW lions AS SELECT * FROM shape_params WHERE species = 'panthera-leo'",
        data,
        read_only=False,
    )
    assert query("SELECT count(*) AS n FROM lions", data)["n"][0] == 2 * N
    refresh_catalog(data)  # a refresh rebuilds the file: ad-hoc objects do not survive
    with pytest.raises(CatalogQueryError, match="lions"):
        query("SELECT * FROM lions", data)


def _info(data):
    return query("SELECT files_reused, files_read FROM _catalog_info", data).iloc[0].tolist()


def test_rewritten_partition_with_other_rows_replaces_them(data):
    refresh_catalog(data)
    path = data / "shape_params" / "panthera-leo" / "001.parquet"
    fewer = (
        _shape("panthera-leo", "001", offset=50.0)
        .iloc[:2]
        .assign(sample_id=["leo.new.0", "leo.new.1"])
    )
    write_table_atomic(fewer, path)
    refresh_catalog(data)
    assert _info(data) == [5, 1]  # species + four unchanged partition files reused, one re-read
    leo = query("SELECT sample_id FROM samples WHERE species = 'panthera-leo' ORDER BY 1", data)[
        "sample_id"
    ]
    assert leo.tolist() == ["leo.new.0", "leo.new.1"] + [
        f"panthera-leo.000.{i:05d}" for i in range(N)
    ]
    dup = query("SELECT count(*) - count(DISTINCT sample_id) AS d FROM shape_params", data)["d"][0]
    assert dup == 0


def test_incremental_refresh_adds_new_and_drops_deleted_partitions(data):
    refresh_catalog(data)
    write_table_atomic(
        _pose("dog-akita", "001"), data / "pose_params" / "dog-akita" / "001.parquet"
    )
    (data / "shape_params" / "dog-akita" / "000.parquet").unlink()
    refresh_catalog(data)
    assert _info(data) == [
        4,
        2,
    ]  # a changed partition's files are all read again: dog-akita/001's two
    rows = query(
        "SELECT species, shard, count(*) AS n, count(yaw_deg) AS y FROM samples GROUP BY ALL ORDER BY ALL",
        data,
    )
    assert rows.values.tolist() == [
        ["dog-akita", "001", N, N],
        ["panthera-leo", "000", N, N],
        ["panthera-leo", "001", N, 0],
    ]
    refresh_catalog(data)  # nothing changed: every row comes from the previous snapshot
    assert _info(data) == [6, 0]
    assert query("SELECT count(*) AS n FROM pose_params", data)["n"][0] == 2 * N


def test_temporary_files_never_ingested(data):
    refresh_catalog(data)
    # A complete, valid Parquet file still under atomic_path's temporary name must stay invisible.
    write_table_atomic(_shape("dog-akita", "000", offset=9.0), data / "tmp-src.parquet")
    (data / "tmp-src.parquet").rename(data / "shape_params" / "dog-akita" / ".003.parquet.ab12.tmp")
    (data / "shape_params" / "dog-akita" / ".004.parquet").write_bytes(b"PAR1 partial")
    refresh_catalog(data)
    assert _info(data) == [6, 0]
    assert query("SELECT count(*) AS n, max(betas[1]) AS b FROM shape_params", data).iloc[
        0
    ].tolist() == [4 * N, N - 1]


def test_failed_refresh_keeps_the_previous_snapshot(data):
    refresh_catalog(data)
    (data / "pose_params" / "dog-akita").mkdir()
    (data / "pose_params" / "dog-akita" / "000.parquet").write_bytes(b"not parquet")
    with pytest.raises(CatalogQueryError, match="000.parquet"):
        refresh_catalog(data)
    assert query("SELECT count(*) AS n FROM pose_params", data)["n"][0] == N
    assert sorted(p.name for p in data.iterdir()) == [
        "catalog.duckdb",
        "catalog.duckdb.lock",
        "catalog.duckdb.writer.lock",
        "pose_params",
        "shape_params",
        "species",
    ]


def test_reader_in_another_process_does_not_block_refresh(data):
    path = refresh_catalog(data)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(c.execute('SELECT count(*) FROM pose_params').fetchone()[0], flush=True); sys.stdin.readline(); "
            "print(c.execute('SELECT count(*) FROM pose_params').fetchone()[0], flush=True)",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == str(N)
        write_table_atomic(
            _pose("dog-akita", "000"), data / "pose_params" / "dog-akita" / "000.parquet"
        )
        refresh_catalog(data)
        assert _info(data) == [5, 2]  # the old file, held open, was copied and the copy updated
        assert query("SELECT count(*) AS n FROM pose_params", data)["n"][0] == 2 * N
        out, _ = reader.communicate("\n", timeout=30)
        assert out.strip() == str(N)  # the reader keeps its own snapshot
    finally:
        reader.kill()


def test_new_column_is_added_a_mixed_type_is_refused_and_a_schema_change_rebuilds(data):
    refresh_catalog(data)
    flagged = _pose("dog-akita", "000").assign(flagged=True)
    write_table_atomic(flagged, data / "pose_params" / "dog-akita" / "000.parquet")
    refresh_catalog(data)
    assert _info(data) == [5, 2]  # the new column is added in place: only dog-akita/000 read
    assert query("SELECT count(flagged) AS n FROM samples", data)["n"][0] == N
    assert "flagged" in query("SELECT * FROM pose_params LIMIT 1", data).columns
    odd = data / "pose_params" / "dog-akita" / "001.parquet"
    write_table_atomic(_pose("dog-akita", "001").assign(yaw_deg="left"), odd)
    with pytest.raises(CatalogQueryError, match=f"{odd}: column 'yaw_deg' is string, but double"):
        refresh_catalog(data)  # never widened to VARCHAR for every sample
    kind = "SELECT typeof(yaw_deg) AS t, count(*) AS n FROM pose_params GROUP BY 1"
    assert query(kind, data).values.tolist() == [["DOUBLE", 2 * N]]  # the previous catalog
    for sp, sh in (("panthera-leo", "000"), ("dog-akita", "000")):  # a schema change of every file
        write_table_atomic(
            _pose(sp, sh).assign(yaw_deg="left"), data / "pose_params" / sp / f"{sh}.parquet"
        )
    refresh_catalog(data)
    assert _info(data) == [0, 8]  # the kind changed everywhere: rebuilt from every file
    assert query(kind, data).values.tolist() == [["VARCHAR", 3 * N]]


def test_successive_refreshes_with_a_stale_cached_handle_never_duplicate(data):
    refresh_catalog(data)
    assert (
        query("SELECT count(*) AS n FROM pose_params", data)["n"][0] == N
    )  # caches a handle on this file
    for shard in ("000", "001"):  # no query in between: the cached handle stays on the first file
        write_table_atomic(
            _pose("dog-akita", shard), data / "pose_params" / "dog-akita" / f"{shard}.parquet"
        )
        refresh_catalog(data)
    rows = query("SELECT count(*) AS n, count(DISTINCT sample_id) AS u FROM pose_params", data)
    assert rows.iloc[0].tolist() == [3 * N, 3 * N]
    assert _info(data) == [6, 2]


def _views_content(data):
    """Every view's rows (sorted, as plain lists) and columns: what a query can tell apart."""
    out = {}
    for view in catalog_views(data):
        frame = query(f"SELECT * FROM {view}", data)
        key = "key" if view == "species" else "sample_id"
        frame = frame.sort_values(key, ignore_index=True)
        out[view] = (list(frame.columns), frame.astype(str).values.tolist())
    return out


def test_each_stage_view_has_exactly_its_own_rows_and_columns(data):
    # A partial pipeline: pose_params for a partition that has no shape_params yet, and the reverse.
    write_table_atomic(
        _pose("dog-akita", "002"), data / "pose_params" / "dog-akita" / "002.parquet"
    )
    refresh_catalog(data)
    for table in ("shape_params", "pose_params"):
        files = sorted((data / table).glob("*/*.parquet"))
        want = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).sort_values(
            "sample_id"
        )
        got = query(f"SELECT * FROM {table} ORDER BY sample_id", data)
        assert list(got.columns) == list(want.columns), table
        assert got.astype(str).values.tolist() == want.astype(str).values.tolist(), table
    samples = query("SELECT sample_id, yaw_deg FROM samples", data)
    assert len(samples) == 4 * N and not samples["sample_id"].str.startswith("dog-akita.002").any()
    assert samples["yaw_deg"].notna().sum() == N  # dog-akita/002's poses wait for its shape_params


def test_incremental_refresh_equals_a_full_rebuild(data):
    refresh_catalog(data)
    write_table_atomic(
        _pose("dog-akita", "000"), data / "pose_params" / "dog-akita" / "000.parquet"
    )  # new
    write_table_atomic(
        _shape("panthera-leo", "000", offset=3.0),
        data / "shape_params" / "panthera-leo" / "000.parquet",
    )
    (data / "shape_params" / "dog-akita" / "001.parquet").unlink()  # deleted
    write_table_atomic(
        _shape("felis-catus", "000"), data / "shape_params" / "felis-catus" / "000.parquet"
    )  # new species
    refresh_catalog(data)
    assert (
        _info(data)[1] == 5
    )  # the four changed partitions' five files (dog-akita/001 has none left)
    incremental = _views_content(data)
    assert (
        query(
            "SELECT max(betas[1]) AS b FROM samples WHERE species = 'panthera-leo' AND shard = '000'",
            data,
        )["b"][0]
        == 3.0 + N - 1
    )
    refresh_catalog(data, full=True)
    assert _info(data) == [0, 7]
    assert _views_content(data) == incremental


class _Interrupted(RuntimeError):
    pass


def test_interrupted_incremental_refresh_leaves_the_previous_catalog(data, monkeypatch):
    refresh_catalog(data)
    before = _views_content(data)
    write_table_atomic(
        _pose("dog-akita", "000"), data / "pose_params" / "dog-akita" / "000.parquet"
    )
    (data / "shape_params" / "panthera-leo" / "001.parquet").unlink()
    ingest = catalog_refresh._ingest

    def fail_after_the_deletes(*args):
        ingest(*args)  # the deletes and this batch's inserts are done, uncommitted
        raise _Interrupted("killed mid-update")

    monkeypatch.setattr(catalog_refresh, "_ingest", fail_after_the_deletes)
    with pytest.raises(_Interrupted):
        refresh_catalog(data)
    assert _views_content(data) == before
    monkeypatch.setattr(catalog_refresh, "_ingest", ingest)
    refresh_catalog(data)
    assert query("SELECT count(*) AS n, count(yaw_deg) AS y FROM samples", data).iloc[
        0
    ].tolist() == [3 * N, 2 * N]


def test_killed_incremental_refresh_leaves_the_previous_catalog(data):
    refresh_catalog(data)
    before = _views_content(data)
    write_table_atomic(
        _pose("dog-akita", "000"), data / "pose_params" / "dog-akita" / "000.parquet"
    )
    script = (
        "import os, sys; from genzoo_assets.core.catalog import refresh as c; i = c._ingest\n"
        "def die(*a):\n    i(*a); os._exit(9)\n"
        "c._ingest = die; c.refresh_catalog(sys.argv[1])"
    )
    assert subprocess.run([sys.executable, "-c", script, str(data)], timeout=120).returncode == 9
    assert _views_content(data) == before
    refresh_catalog(data)
    assert query("SELECT count(yaw_deg) AS y FROM samples", data)["y"][0] == 2 * N


def test_listing_reads_only_changed_folders_and_relists_racy_ones(data):
    """A folder's files are listed again only when its mtime moved, or when it was still within
    RACY_NS of the previous listing (a rename in the same timestamp tick leaves the mtime alone)."""
    folder = data / "shape_params" / "dog-akita"
    refresh_catalog(data)  # the folder was just written: recorded as unsettled
    mtime = folder.stat().st_mtime_ns
    write_table_atomic(_shape("dog-akita", "002"), folder / "002.parquet")
    os.utime(folder, ns=(mtime, mtime))  # as if renamed within the same tick as the listing
    refresh_catalog(data)
    assert (
        query("SELECT count(*) AS n FROM shape_params WHERE species = 'dog-akita'", data)["n"][0]
        == 3 * N
    )
    old = time.time_ns() - 10 * store.RACY_NS
    os.utime(folder, ns=(old, old))  # settled: the next refresh records its mtime
    refresh_catalog(data)
    write_table_atomic(_shape("dog-akita", "003"), folder / "003.parquet")
    os.utime(folder, ns=(old, old))  # a change the folder's mtime does not show (edited in place)
    refresh_catalog(data)
    assert (
        query("SELECT count(*) AS n FROM shape_params WHERE species = 'dog-akita'", data)["n"][0]
        == 3 * N
    )
    refresh_catalog(data, full=True)  # what `genzoo catalog refresh --full` is for
    assert (
        query("SELECT count(*) AS n FROM shape_params WHERE species = 'dog-akita'", data)["n"][0]
        == 4 * N
    )


def test_a_reader_waits_for_an_in_place_refresh_and_sees_all_of_it(data, monkeypatch):
    refresh_catalog(data)
    write_table_atomic(
        _pose("dog-akita", "000"), data / "pose_params" / "dog-akita" / "000.parquet"
    )
    ingest, started = catalog_refresh._ingest, threading.Event()

    def slow(*args):
        started.set()
        time.sleep(1.0)
        ingest(*args)

    monkeypatch.setattr(catalog_refresh, "_ingest", slow)
    refresh = threading.Thread(target=refresh_catalog, args=(data,))
    refresh.start()
    assert started.wait(30)
    t0 = time.perf_counter()
    rows = query(
        "SELECT count(yaw_deg) AS y FROM samples", data
    )  # blocks on the lock until the commit
    waited = time.perf_counter() - t0
    refresh.join(30)
    assert rows["y"][0] == 2 * N and waited > 0.3
    assert _info(data) == [5, 2]  # in place, not on a copy


def test_a_long_reader_never_blocks_the_refresh(data, monkeypatch):
    refresh_catalog(data)
    monkeypatch.setattr(catalog_refresh, "WRITE_WAIT_S", 0.2)
    stream = query_batches("SELECT sample_id FROM pose_params", data, vectors=1)
    first = next(stream)  # holds the shared lock (and the file) until the stream ends
    write_table_atomic(
        _pose("dog-akita", "000"), data / "pose_params" / "dog-akita" / "000.parquet"
    )
    t0 = time.perf_counter()
    refresh_catalog(data)  # waits WRITE_WAIT_S, then updates a copy and renames it
    assert time.perf_counter() - t0 < 30
    assert len(first) + sum(len(b) for b in stream) == N  # the stream kept its snapshot
    assert query("SELECT count(*) AS n FROM pose_params", data)["n"][0] == 2 * N
