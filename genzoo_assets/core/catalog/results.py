"""``results.duckdb``: what the pipeline learned about its data, downstream of the catalog.

The catalog (``catalog.duckdb``) snapshots the per-sample tables; the regressor and the benchmark
come after it (they read the catalog through the shard export), so their outputs cannot live in
the catalog without a backward edge. This second file holds them as native tables:

- ``metrics``: every benchmark's per-sample rows (``benchmark/<test_set>/predictions.parquet``)
  plus a ``test_set`` column;
- ``training_lineage``: which shard and catalog row trained the current checkpoint
  (``regressor/lineage.parquet``: split, shard, sample_id, export, run_id, checkpoint, train_config).

It is small (one row per evaluated sample and method), so it is rebuilt in full into a temporary
file and renamed; catalog queries attach it read-only next to the catalog, so ``metrics`` joins
``samples`` in one statement.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from genzoo_assets.core import paths
from genzoo_assets.core.catalog.store import RESULTS_NAME, sql_literal


def results_path(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / RESULTS_NAME


def _with_test_set(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> str:
    """A SELECT of one predictions file whose ``test_set`` is ``name`` (the benchmark's rows carry
    the column already; a file without it gets one: never two columns of that name)."""
    source = f"read_parquet({sql_literal(path.as_posix())})"
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    if "test_set" in columns:
        return f"SELECT * REPLACE ({sql_literal(name)} AS test_set) FROM {source}"
    return f"SELECT *, {sql_literal(name)} AS test_set FROM {source}"


def refresh_results(
    data_dir: str | os.PathLike, predictions: dict[str, Path], lineage: Path | None
) -> Path:
    """(Re)build ``<data_dir>/results.duckdb`` from the given files; returns its path.

    ``predictions`` maps a test set name to its ``predictions.parquet``; missing files and a
    missing ``lineage`` leave their table out (the regressor or that benchmark has not run yet).
    """
    target = results_path(data_dir)
    present = {name: Path(p) for name, p in predictions.items() if Path(p).is_file()}
    with paths.atomic_path(target) as tmp:
        tmp.unlink()  # DuckDB creates the file itself; an empty one is "not a valid database"
        con = duckdb.connect(str(tmp))
        try:
            if present:
                union = " UNION ALL BY NAME ".join(
                    _with_test_set(con, name, p) for name, p in sorted(present.items())
                )
                con.execute(f"CREATE TABLE metrics AS {union}")
            if lineage is not None and Path(lineage).is_file():
                con.execute(
                    "CREATE TABLE training_lineage AS SELECT * FROM "
                    f"read_parquet({sql_literal(Path(lineage).as_posix())})"
                )
            con.execute("CHECKPOINT")
        finally:
            con.close()
            Path(f"{tmp}.wal").unlink(missing_ok=True)
    return target


def result_tables(data_dir: str | os.PathLike) -> list[str]:
    """Names of the tables in ``results.duckdb`` ([] when it does not exist yet)."""
    path = results_path(data_dir)
    if not path.is_file():
        return []
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_literal(str(path))} AS results (READ_ONLY)")
        return sorted(
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'results'"
            ).fetchall()
        )
    finally:
        con.close()
