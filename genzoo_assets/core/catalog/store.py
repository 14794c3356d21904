"""The catalog file: its name and lock, its errors, and SQL quoting (shared by refresh and query).

How the catalog is built and kept current is in :mod:`refresh`; how users read it, :mod:`query`.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from genzoo_assets.core import layout, paths
from genzoo_assets.core.errors import InputError

CATALOG_NAME = layout.CATALOG_FILE
LOCK_NAME = f"{CATALOG_NAME}.lock"  # readers hold it shared, an in-place refresh exclusively
WRITER_LOCK_NAME = f"{CATALOG_NAME}.writer.lock"  # held by every refresh: one writer at a time
WAL_SUFFIX = ".wal"  # DuckDB's write-ahead log beside a database file
RESULTS_NAME = layout.RESULTS_FILE  # written by ``results.refresh_results``; attached by queries
FORMAT = 4  # bump when the snapshot layout changes: an older catalog is rebuilt, not reused
SAMPLE_TABLES = layout.SAMPLE_STAGES
KEY_COLUMNS = ("sample_id", "species", "shard", "index")
SPECIES_JOIN_COLUMNS = ("scientific_name", "common_name", "order", "family", "genus", "is_dog")
QUERY_MEMORY_LIMIT = (
    "4GB"  # DuckDB's memory cap for a query (no spilling to disk): a runaway join fails cleanly
)
REFRESH_HINT = "`genzoo catalog refresh` rebuilds it from the Parquet files"
RACY_NS = 2_000_000_000  # a directory changed this close to its listing is listed again (covers 1-2 s mtimes)
WRITE_WAIT_S = 2.0  # how long an in-place refresh waits for readers before it writes a copy instead
BATCH_PARTITIONS = 256  # partitions read and joined per statement (bounds a full build's memory)
# Row groups of 48 k rows (~12 species): zone maps let a species filter skip the rest. Per query at
# 1 M samples (new handle each): slowest typical query 55 / 45 / 68 ms with 16 k / 48 k / DuckDB's
# default 122,880 rows (small groups cost more metadata per whole-table scan, big ones more rows
# per species filter: 37 / 44 / 68 ms for two species, 55 / 43 / 41 ms for an aggregate).
ROW_GROUP_SIZE = 49_152
UNSETTLED = -1
INFO_TABLE = "_catalog_info"
FILES_TABLE = "_catalog_files"
DIRS_TABLE = "_catalog_dirs"
WIDE_TABLE = "_snap_samples"
SPECIES_TABLE = "_snap_species"
PART_COLUMN = "_part"
FILE_COLUMN = "_file"
# Float compressors (ALP, Chimp...) cost more CPU than they save on sampled parameters.
WRITE_CONFIG = {"disabled_compression_methods": "alp,alprd,chimp,patas"}


class CatalogQueryError(InputError):
    """A catalog query was refused or failed; the message names the SQL."""


class CatalogMissingError(CatalogQueryError):
    """No catalog for this data directory yet (or one made for another): only the ``catalog``
    asset writes it, so a reader never builds it behind the asset's back (`genzoo catalog refresh`)."""


def one_line(exc: duckdb.Error) -> str:
    """DuckDB's message without its multi-line ``LINE n:`` / caret excerpt (the SQL is quoted anyway)."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    return " ".join(ln for ln in lines if ln and not ln.startswith("LINE ") and set(ln) != {"^"})


def catalog_path(data_dir: str | os.PathLike | None = None) -> Path:
    return root_dir(data_dir) / CATALOG_NAME


def root_dir(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir).expanduser().resolve() if data_dir is not None else paths.data_dir()


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_path(path: str | os.PathLike) -> str:
    """A file path as a SQL literal that DuckDB's file readers take literally: ``*``, ``?`` and ``[``
    become one-character classes (``[*]``), so a folder named ``images/*`` never globs its
    neighbours in."""
    text = Path(path).as_posix()
    return sql_literal("".join(f"[{ch}]" if ch in "*?[" else ch for ch in text))


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


ALIAS = "catalog"
RESULTS_ALIAS = "results"


def attach_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory database with ``path`` attached read-only (the refresh holds it while copying).
    ``duckdb.connect(path)`` would reuse this process's open instance for that path, if any."""
    db = duckdb.connect()
    try:
        db.execute(f"ATTACH {sql_literal(str(path))} AS {ALIAS} (READ_ONLY)")
    except duckdb.Error:
        db.close()
        raise
    return db
