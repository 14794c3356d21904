"""User SQL on the catalog: every table and view reads, nothing can touch a file, the network or a
setting (statement types are not what protects), results are limited and memory is capped."""

import shutil

import numpy as np
import pandas as pd
import pytest

from genzoo_assets.core.catalog.query import catalog_views, query, query_batches
from genzoo_assets.core.catalog.refresh import refresh_catalog
from genzoo_assets.core.catalog.results import refresh_results
from genzoo_assets.core.catalog.store import CatalogQueryError
from genzoo_assets.core.tables import write_table_atomic
from genzoo_assets.core.taxonomy.table import build_species_table

N = 5000  # more than one 2048-row DuckDB vector


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sql") / "data"
    write_table_atomic(build_species_table(dataset_size=1000), root / "species" / "species.parquet")
    ids = [f"panthera-leo.000.{i:05d}" for i in range(N)]
    base = {"sample_id": ids, "species": "panthera-leo", "shard": "000", "index": np.arange(N)}
    write_table_atomic(
        pd.DataFrame(
            {**base, "seed": np.arange(N), "betas": [np.zeros(3)] * N, "provenance": "{}"}
        ),
        root / "shape_params" / "panthera-leo" / "000.parquet",
    )
    write_table_atomic(
        pd.DataFrame({**base, "yaw_deg": np.zeros(N), "provenance": "{}"}),
        root / "pose_params" / "panthera-leo" / "000.parquet",
    )
    predictions = root / "benchmark" / "heldout" / "predictions.parquet"
    write_table_atomic(
        pd.DataFrame({"sample_id": ids[:3], "pa_mpjpe": [0.1, 0.2, 0.3]}), predictions
    )
    lineage = root / "regressor" / "lineage.parquet"
    write_table_atomic(
        pd.DataFrame(
            {
                "split": ["train"],
                "shard": ["train-000000.tar"],
                "sample_id": ids[:1],
                "checkpoint": ["regressor/checkpoint.pt"],
            }
        ),
        lineage,
    )
    refresh_catalog(root)
    refresh_results(root, {"heldout": predictions}, lineage)
    return root


def test_every_table_and_view_reads(data):
    views = catalog_views(data)
    assert set(views) == {"species", "shape_params", "pose_params", "samples"}
    for name in [
        *views,
        "_catalog_info",
        "_catalog_files",
        "_catalog_dirs",
        "_snap_samples",
        "_snap_species",
        "metrics",
        "training_lineage",
    ]:
        assert len(query(f"SELECT * FROM {name}", data).columns) > 0, name
    assert query("SELECT count(*) AS n FROM samples", data)["n"][0] == N
    assert (
        query("SELECT count(*) AS n FROM metrics JOIN samples USING (sample_id)", data)["n"][0] == 3
    )
    assert "samples" in set(query("SHOW TABLES", data)["name"])
    assert query("EXPLAIN SELECT * FROM samples", data).shape[0] >= 1


REFUSED = {
    "insert": "INSERT INTO _catalog_info (data_dir) VALUES ('x')",
    "update": 'UPDATE _snap_samples SET "shape_params.seed" = 0',
    "delete-results": "DELETE FROM metrics",
    "drop": "DROP VIEW samples",
    "create-table": "CREATE TABLE evil AS SELECT 1",
    "create-macro": "CREATE MACRO evil() AS 1",
    "copy-to": "COPY (SELECT 1) TO '{out}' (FORMAT csv)",
    "explain-analyze-copy-partition": "EXPLAIN ANALYZE COPY (SELECT * FROM shape_params WHERE false) TO '{partition}' "
    "(FORMAT parquet)",
    "explain-analyze-copy": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'",
    "export-database": "EXPORT DATABASE '{out_dir}'",
    "read-csv-passwd": "SELECT * FROM read_csv('/etc/passwd')",
    "read-text-environ": "SELECT * FROM read_text('/proc/self/environ')",
    "read-blob": "SELECT * FROM read_blob('/etc/hostname')",
    "read-parquet-partition": "SELECT * FROM read_parquet('{partition}')",
    "glob": "SELECT * FROM glob('/etc/*')",
    "http": "SELECT * FROM read_parquet('https://example.com/x.parquet')",
    "attach": "ATTACH '{out}' AS evil",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "secret": "CREATE SECRET s (TYPE s3)",
    "set-external-access": "SET enable_external_access = true",
    "reset-lock": "RESET lock_configuration",
    "set-memory": "SET memory_limit = '100GB'",
    "set-temp-directory": "SET temp_directory = '{out_dir}'",
    "profiling-output": "SET profiling_output = '{out}'",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_statements_touch_nothing(case, data, tmp_path):
    partition = data / "shape_params" / "panthera-leo" / "000.parquet"
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    sql = REFUSED[case].format(
        out=tmp_path / "leak.csv", out_dir=tmp_path / "leak", partition=partition
    )
    with pytest.raises(CatalogQueryError) as exc:
        query(sql, data)
    message = str(exc.value)
    assert "\n" not in message and sql in message
    assert "refused: the catalog is read-only" in message
    assert not list(tmp_path.iterdir()), "a refused statement wrote a file"
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()} == before
    assert (
        query("SELECT count(*) AS n FROM shape_params", data)["n"][0] == N
    )  # the handle still works


def test_no_temp_files_in_the_working_directory(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CatalogQueryError, match="memory limit of 64MB"):
        query("SELECT list(repeat('x', 1000)) FROM range(1000000)", data, memory_limit="64MB")
    assert not list(tmp_path.iterdir())  # DuckDB's default would spill into ./.tmp


def test_limit_and_streaming(data):
    assert len(query("SELECT * FROM samples", data, limit=7)) == 7
    assert len(query("SELECT * FROM samples", data, limit=3000)) == 3000
    empty = query("SELECT sample_id FROM samples WHERE false", data, limit=10)
    assert empty.empty and list(empty.columns) == ["sample_id"]
    parts = list(query_batches("SELECT * FROM samples ORDER BY sample_id", data, vectors=1))
    assert [len(p) for p in parts] == [2048, 2048, N - 4096]
    assert pd.concat(parts)["sample_id"].is_monotonic_increasing
    first = list(query_batches("SELECT sample_id FROM samples WHERE false", data))
    assert len(first) == 1 and list(first[0].columns) == ["sample_id"]


def test_bad_memory_limit_is_named(data):
    with pytest.raises(CatalogQueryError, match="memory limit 'lots'"):
        query("SELECT 1", data, memory_limit="lots")


@pytest.mark.parametrize("corruption", ["random", "truncated", "empty", "flipped"])
def test_corrupt_catalog_names_the_fix_and_refresh_rebuilds(corruption, data, tmp_path):
    copy = tmp_path / "data"
    copy.mkdir()
    for name in ("species", "shape_params", "pose_params"):
        shutil.copytree(data / name, copy / name)  # a symlink out of the data dir is not catalogued
    refresh_catalog(copy)
    path = copy / "catalog.duckdb"
    good = path.read_bytes()
    if corruption == "random":
        path.write_bytes(np.random.default_rng(0).bytes(300_000))
    elif corruption == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif corruption == "empty":
        path.write_bytes(b"")
    else:
        raw = bytearray(good)
        for off in range(12288 + 100, len(raw) - 64, 4096):
            raw[off : off + 64] = b"\xff" * 64
        path.write_bytes(bytes(raw))
    with pytest.raises(CatalogQueryError) as exc:
        query("SELECT count(*) AS n FROM samples", copy)
    assert str(path) in str(exc.value) and "`genzoo catalog refresh` rebuilds it" in str(exc.value)
    assert "\n" not in str(exc.value)
    refresh_catalog(copy)
    assert query("SELECT count(*) AS n FROM samples", copy)["n"][0] == N


def test_corrupt_results_file_is_named_and_never_blocks_the_catalog(data, tmp_path):
    copy = tmp_path / "data"
    copy.mkdir()
    for name in ("species", "shape_params", "pose_params", "benchmark", "regressor"):
        shutil.copytree(data / name, copy / name)  # a symlink out of the data dir is not catalogued
    refresh_catalog(copy)
    results = copy / "results.duckdb"
    results.write_bytes(np.random.default_rng(1).bytes(100_000))
    with pytest.raises(CatalogQueryError) as exc:
        query("SELECT count(*) AS n FROM metrics", copy)
    assert str(results) in str(exc.value) and "`genzoo catalog refresh` rebuilds it" in str(
        exc.value
    )
    assert set(catalog_views(copy)) == {"species", "shape_params", "pose_params", "samples"}
    assert query("SELECT count(*) AS n FROM samples", copy, with_results=False)["n"][0] == N
    refresh_results(
        copy,
        {"heldout": copy / "benchmark" / "heldout" / "predictions.parquet"},
        copy / "regressor" / "lineage.parquet",
    )
    assert query("SELECT count(*) AS n FROM metrics", copy)["n"][0] == 3
