"""The DuckDB catalog: a SNAPSHOT of every Parquet table, in DuckDB's own columnar storage.

Partition runs write only Parquet (one file per partition, atomically): that is the source of
truth. ``refresh_catalog`` copies it into ``catalog.duckdb`` as native tables, so a query reads one
columnar file instead of paying per-file costs on thousands of small partition files (measured
0.2+ ms per file per query, ~400 ms per query at 2,000 files; ~10 ms on the snapshot).

Trade-off: the catalog is a snapshot as of the last refresh. New or rewritten partitions appear
after ``genzoo catalog refresh`` or the Dagster ``catalog`` asset, which runs automatically after
new partitions are materialised (in a pool of limit 1, so one refresh at a time).

Safety: the refresh builds the new file under a temporary name and renames it into place, so a
reader never sees a half-built catalog and a reader holding the old file (its own snapshot) never
blocks the refresh. Rows are tracked by the partition file they came from (``_catalog_files``:
path, size, mtime, inode), so a rewritten partition replaces its rows (reruns never duplicate),
a deleted one loses them, and temporary files (dot-prefixed ``.tmp``) are never globbed.

Incremental: the refresh copies the previous catalog file (while holding DuckDB's shared lock, so
no writer is mid-checkpoint), deletes the rows of partition files removed or changed since then
and inserts the rows of new or changed ones: O(new files) plus one file copy, 0.4-1 s after
adding one species to 1M samples against 6-14 s for a full build (2 loaded cores). A full build
happens when there is no usable previous catalog (missing, moved data directory, older format,
held by a writer), when a new column or type appears, and once replaced files pile up (their
deleted rows stay in the file until it is rewritten). Incrementally added rows go at the end.

Each table is stored as ``_snap_<table>`` with its source file in a ``_file`` column, its rows in
file-path order (clustered by species, so a species filter skips whole row groups); the public
names (``species`` and the per-sample tables) are views that hide ``_file``. ``samples``
is a view joining the snapshots on ``sample_id``: materialising it too more than doubled the
refresh time and the file size, while the join on native tables costs ~10-20 ms for one species
and 0.2-0.4 s for all 1M samples.

Forward only: the catalog reads the files of the assets upstream of it and nothing else. What
comes after it (the regressor's lineage, the benchmark's per-sample metrics) is in
``results.duckdb`` (:mod:`results`, its own asset), which queries attach read-only beside the
catalog, so ``metrics`` and ``training_lineage`` resolve by name in the same statement.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from genzoo_assets.core import paths

CATALOG_NAME = "catalog.duckdb"
RESULTS_NAME = "results.duckdb"  # written by ``results.refresh_results``; attached by queries
FORMAT = 2  # bump when the snapshot layout changes: an older catalog is rebuilt, not reused
SAMPLE_TABLES = ("shape_params", "pose_params", "control_renders", "captions", "prompts", "images")
KEY_COLUMNS = ("sample_id", "species", "shard", "index")
SPECIES_JOIN_COLUMNS = ("scientific_name", "common_name", "order", "family", "genus", "is_dog")
QUERY_MEMORY_LIMIT = "4GB"  # DuckDB's memory cap for a query (no spilling to disk): a runaway join fails cleanly
REFRESH_HINT = "`genzoo catalog refresh` rebuilds it from the Parquet files"
_INFO_TABLE = "_catalog_info"
_FILES_TABLE = "_catalog_files"
_FILE_COL = "_file"
COMPACT_MIN_FILES = 64  # replaced files tolerated before the snapshot is rewritten compactly
COMPACT_FRACTION = 0.25


class CatalogQueryError(ValueError):
    """A catalog query was refused or failed; the message names the SQL."""


class CatalogMissingError(CatalogQueryError):
    """No catalog for this data directory yet (or one made for another): only the ``catalog``
    asset writes it, so a reader never builds it behind the asset's back (`genzoo catalog refresh`)."""


class _Rebuild(Exception):
    """The previous snapshot cannot be built on incrementally."""


def _one_line(exc: duckdb.Error) -> str:
    """DuckDB's message without its multi-line ``LINE n:`` / caret excerpt (the SQL is quoted anyway)."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    return " ".join(ln for ln in lines if ln and not ln.startswith("LINE ") and set(ln) != {"^"})


def catalog_path(data_dir: str | os.PathLike | None = None) -> Path:
    return _root(data_dir) / CATALOG_NAME


def _root(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir).expanduser().resolve() if data_dir is not None else paths.data_dir()


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _snap(name: str) -> str:
    return _ident(f"_snap_{name}")


def _stat(path: str, entry: os.DirEntry | None = None) -> tuple[int, int, int] | None:
    try:
        st = entry.stat() if entry is not None else os.stat(path)
    except FileNotFoundError:  # deleted while listing
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _partition_files(table_dir: Path) -> dict[str, tuple[int, int, int]]:
    """``<table>/<species>/<shard>.parquet`` files in path order, via ``os.scandir`` (glob and Path
    objects cost ~0.3 ms per file, most of a refresh's listing at 16 k partitions)."""
    files = {}
    try:
        species_dirs = sorted((e.name, e.path) for e in os.scandir(table_dir) if e.is_dir() and not e.name.startswith("."))
    except FileNotFoundError:
        return files
    for _, path in species_dirs:
        try:
            entries = sorted((e for e in os.scandir(path) if e.name.endswith(".parquet") and not e.name.startswith(".")
                              and e.is_file()), key=lambda e: e.name)
        except FileNotFoundError:  # removed while listing
            continue
        for entry in entries:
            stat = _stat(entry.path, entry)
            if stat is not None:
                files[Path(entry.path).as_posix()] = stat
    return files


def _sources(root: Path) -> dict[str, dict[str, tuple[int, int, int]]]:
    """Table name -> {absolute file path: (size, mtime_ns, inode)} for every table that has files.

    Dot-prefixed names (atomic_path's half-written temporaries) are skipped, and files are listed
    in path order so rows land clustered by species.
    """
    out = {}
    species = (root / "species" / "species.parquet").as_posix()
    if (stat := _stat(species)) is not None:
        out["species"] = {species: stat}
    for table in SAMPLE_TABLES:
        if files := _partition_files(root / table):
            out[table] = files
    return out


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {_ident(table)}").fetchall()]


def _samples_sql(con: duckdb.DuckDBPyConnection, views: list[str]) -> str:
    """shape_params LEFT JOIN every other per-sample table and species; one merged provenance."""
    tables = [t for t in SAMPLE_TABLES if t in views]
    taken = set(KEY_COLUMNS) | {"provenance"}
    select = [f"t0.{_ident(c)}" for c in KEY_COLUMNS]
    joins, prov = [], []
    for i, table in enumerate(tables):
        alias = f"t{i}"
        cols = _columns(con, table)
        for col in cols:
            if col in KEY_COLUMNS or col == "provenance":
                continue
            out = col if col not in taken else f"{table}_{col}"
            taken.add(out)
            select.append(f"{alias}.{_ident(col)} AS {_ident(out)}")
        if "provenance" in cols:
            prov.append(f"{_lit(table)}, TRY_CAST({alias}.provenance AS JSON)")
        if i:
            joins.append(f"LEFT JOIN {_ident(table)} {alias} ON {alias}.sample_id = t0.sample_id")
    if "species" in views:
        sp_cols = set(_columns(con, "species"))
        for col in SPECIES_JOIN_COLUMNS:
            if col in sp_cols:
                out = col if col not in taken else f"species_{col}"
                taken.add(out)
                select.append(f"sp.{_ident(col)} AS {_ident(out)}")
        if "key" in sp_cols:
            joins.append("LEFT JOIN species sp ON sp.key = t0.species")
    select.append(f"json_object({', '.join(prov)}) AS provenance" if prov else "NULL::JSON AS provenance")
    return f"SELECT {', '.join(select)} FROM shape_params t0 {' '.join(joins)}"


def _copy_previous(target: Path, tmp: Path) -> bool:
    """Copy the previous snapshot onto ``tmp``; False when there is none to build on.

    The copy is taken while attached read-only, i.e. under DuckDB's shared lock, so no writer
    (``query(read_only=False)`` in another process) is mid-checkpoint; readers hold only shared
    locks and never block it. What the copy holds is then read from the copy itself.
    """
    if not target.is_file() or Path(f"{target}.wal").exists():
        return False
    try:
        held = _attach_read_only(target)
    except duckdb.Error:  # held by a writer, or not a DuckDB file
        return False
    try:
        shutil.copyfile(target, tmp)
    finally:
        held.close()
    return True


def _previous_files(con: duckdb.DuckDBPyConnection, root: Path, sources: dict) -> tuple[dict, int]:
    """Files of the copied snapshot and the files replaced since its last full build; raises
    _Rebuild when it cannot be built on (another data directory or format, too many deletions)."""
    try:
        info = con.execute(f"SELECT data_dir, format, files_replaced FROM {_INFO_TABLE}").fetchone()
        rows = con.execute(f"SELECT name, path, size, mtime_ns, inode FROM {_FILES_TABLE}").fetchall()
    except duckdb.Error as exc:  # an older layout
        raise _Rebuild(str(exc)) from exc
    if info is None or info[:2] != (root.as_posix(), FORMAT):
        raise _Rebuild("made for another data directory or format")
    files: dict[str, dict] = {}
    for name, path, size, mtime_ns, inode in rows:
        files.setdefault(name, {})[path] = (size, mtime_ns, inode)
    replaced = info[2] + sum(1 for name, old in files.items() for f, stat in old.items()
                             if sources.get(name, {}).get(f) != stat)
    # Deleted rows stay in the copied file: past a threshold, rewrite it compactly.
    if replaced > max(COMPACT_MIN_FILES, COMPACT_FRACTION * sum(len(f) for f in sources.values())):
        raise _Rebuild(f"{replaced} files replaced since the last full build")
    return files, replaced


def _read_sql(files: list[str]) -> str:
    listing = ", ".join(_lit(f) for f in files)
    return (f"SELECT * FROM read_parquet([{listing}], hive_partitioning=false, union_by_name=true, "
            f"filename={_lit(_FILE_COL)})")


def _create_view(con: duckdb.DuckDBPyConnection, name: str) -> None:
    cols = [c for c in _columns(con, f"_snap_{name}") if c != _FILE_COL]
    con.execute(f"CREATE OR REPLACE VIEW {_ident(name)} AS SELECT {', '.join(map(_ident, cols))} "
                f"FROM {_snap(name)}")


def _update_table(con: duckdb.DuckDBPyConnection, name: str, files: dict, old: dict) -> tuple[int, int]:
    """Bring ``_snap_<name>`` in line with ``files``: drop rows of removed or changed files, insert
    rows of new or changed ones. Returns (files reused, files read)."""
    gone = [f for f, stat in old.items() if files.get(f) != stat]
    fresh = [f for f, stat in files.items() if old.get(f) != stat]
    if not files:
        con.execute(f"DROP VIEW IF EXISTS {_ident(name)}")
        con.execute(f"DROP TABLE IF EXISTS {_snap(name)}")
        return 0, 0
    if not old:
        con.execute(f"CREATE TABLE {_snap(name)} AS {_read_sql(fresh)}")
    else:
        if gone:
            con.register("_gone", pd.DataFrame({"path": pd.Series(gone, dtype=object)}))
            con.execute(f"DELETE FROM {_snap(name)} WHERE {_FILE_COL} IN (SELECT path FROM _gone)")
        if fresh:  # a new column or an incompatible type raises; the caller then rebuilds in full
            con.execute(f"INSERT INTO {_snap(name)} BY NAME {_read_sql(fresh)}")
    _create_view(con, name)
    return len(files) - len(fresh), len(fresh)


def _drop_ad_hoc(con: duckdb.DuckDBPyConnection, sources: dict) -> None:
    """Drop what ``query(read_only=False)`` created in the copied snapshot: it does not last."""
    keep = {*sources, *(f"_snap_{n}" for n in sources), "samples", _FILES_TABLE, _INFO_TABLE}
    for kind, sql in (("VIEW", "SELECT view_name FROM duckdb_views() WHERE NOT internal"),
                      ("TABLE", "SELECT table_name FROM duckdb_tables() WHERE NOT internal"),
                      ("MACRO", "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'macro' "
                                "AND NOT internal"),
                      ("SEQUENCE", "SELECT sequence_name FROM duckdb_sequences()")):
        for (name,) in con.execute(sql).fetchall():
            if name not in keep:
                con.execute(f"DROP {kind} IF EXISTS {_ident(name)} CASCADE")


def _build(con: duckdb.DuckDBPyConnection, root: Path, sources: dict, prev: dict, replaced: int) -> None:
    reused = read = 0
    _drop_ad_hoc(con, sources)
    for name in [*sources, *(n for n in prev if n not in sources)]:
        r, n = _update_table(con, name, sources.get(name, {}), prev.get(name, {}))
        reused, read = reused + r, read + n
    views = list(sources)
    con.execute("DROP VIEW IF EXISTS samples")
    if "shape_params" in sources:
        con.execute(f"CREATE VIEW samples AS {_samples_sql(con, views)}")
        views.append("samples")
    rows = [(name, f, *stat) for name, files in sources.items() for f, stat in files.items()]
    listing = pd.DataFrame(rows, columns=["name", "path", "size", "mtime_ns", "inode"]).astype(
        {"name": object, "path": object, "size": "int64", "mtime_ns": "int64", "inode": "int64"})
    con.register("_listing", listing)
    con.execute(f"CREATE OR REPLACE TABLE {_FILES_TABLE} AS SELECT * FROM _listing")
    con.execute(f"CREATE OR REPLACE TABLE {_INFO_TABLE} (data_dir VARCHAR, refreshed_at VARCHAR, views VARCHAR, "
                "format INTEGER, files_reused INTEGER, files_read INTEGER, files_replaced INTEGER)")
    con.execute(f"INSERT INTO {_INFO_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)", [
        root.as_posix(), datetime.now(timezone.utc).isoformat(timespec="seconds"), json.dumps(views),
        FORMAT, reused, read, replaced,
    ])
    con.execute("CHECKPOINT")


def _write(tmp: Path, root: Path, sources: dict, incremental: bool) -> None:
    # Float compressors (ALP, Chimp...) cost more CPU than they save on sampled parameters.
    con = duckdb.connect(str(tmp), config={"disabled_compression_methods": "alp,alprd,chimp,patas"})
    try:
        _build(con, root, sources, *(_previous_files(con, root, sources) if incremental else ({}, 0)))
    finally:
        con.close()
        Path(f"{tmp}.wal").unlink(missing_ok=True)


def refresh_catalog(data_dir: str | os.PathLike | None = None) -> Path:
    """(Re)build ``<data_dir>/catalog.duckdb`` as a snapshot of every table with files, plus
    ``samples``; reads only the partition files that changed since the previous snapshot."""
    root = _root(data_dir)
    target = root / CATALOG_NAME
    sources = _sources(root)
    with paths.atomic_path(target) as tmp:
        try:
            if _copy_previous(target, tmp):
                try:
                    _write(tmp, root, sources, incremental=True)
                    return target
                except (_Rebuild, duckdb.Error):  # incl. schema drift (a new column or type)
                    pass
            tmp.unlink(missing_ok=True)
            _write(tmp, root, sources, incremental=False)
        except duckdb.Error as exc:
            raise CatalogQueryError(f"cannot build the catalog for {root}: {_one_line(exc)}") from exc
    return target


def catalog_views(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the views in the current catalog (CatalogMissingError when there is none)."""
    con, info = _open(_root(data_dir), True, with_results=False)
    con.close()
    return json.loads(info["views"])


# One read-only database handle per catalog file in this process: opening the file costs more than
# a typical query on it, and DuckDB's buffer cache survives between queries. A refresh renames a
# new catalog into place, so a handle is keyed by the file's inode and dropped once stale.
_HANDLES: dict[str, tuple[tuple[int, int | None], duckdb.DuckDBPyConnection]] = {}
_HANDLES_LOCK = threading.Lock()
_ALIAS = "catalog"
_RESULTS_ALIAS = "results"


def _attach_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory database with ``path`` attached read-only (the refresh holds it while copying).
    ``duckdb.connect(path)`` would reuse this process's open instance for that path, i.e. the file
    a refresh renamed over."""
    db = duckdb.connect()
    try:
        db.execute(f"ATTACH {_lit(str(path))} AS {_ALIAS} (READ_ONLY)")
    except duckdb.Error:
        db.close()
        raise
    return db


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _locked_reader(path: Path, results: Path | None, memory_limit: str) -> duckdb.DuckDBPyConnection:
    """The handle user SQL runs on: ``path`` (and ``results.duckdb`` when given) attached read-only,
    then external access off and the configuration locked, so no statement (``COPY``, ``ATTACH``,
    ``read_csv``, ``INSTALL``, ``SET``, any of them inside ``EXPLAIN ANALYZE``) can read or write a
    file or reach the network. What is left writable is this process's in-memory scratch database
    (temp tables), capped with the rest by ``memory_limit``; with no temp directory, DuckDB never
    spills to disk."""
    try:
        db = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                                    "memory_limit": memory_limit, "temp_directory": ""})
    except duckdb.Error as exc:
        raise CatalogQueryError(f"memory limit {memory_limit!r} is not a size such as '2GB' ({_one_line(exc)})") from exc
    try:
        try:
            db.execute(f"ATTACH {_lit(str(path))} AS {_ALIAS} (READ_ONLY)")
        except duckdb.Error as exc:
            raise CatalogQueryError(f"the catalog {path} cannot be opened ({_one_line(exc)}): {REFRESH_HINT}") from exc
        if results is not None:
            try:
                db.execute(f"ATTACH {_lit(str(results))} AS {_RESULTS_ALIAS} (READ_ONLY)")
            except duckdb.Error as exc:
                raise CatalogQueryError(f"the results file {results} cannot be opened ({_one_line(exc)}): "
                                        "`genzoo catalog refresh` rebuilds it") from exc
        db.execute("SET enable_external_access = false")
        db.execute("SET lock_configuration = true")
    except BaseException:
        db.close()
        raise
    return db


def _database(path: Path, read_only: bool, memory_limit: str = QUERY_MEMORY_LIMIT,
              with_results: bool = True) -> duckdb.DuckDBPyConnection:
    key = f"{path}|{memory_limit}|{int(with_results)}"
    results = path.parent / RESULTS_NAME if with_results else None
    with _HANDLES_LOCK:
        ino = (path.stat().st_ino, _inode(results) if results else None)
        stale = [k for k, (i, _) in _HANDLES.items() if k.startswith(f"{path}|")
                 and (i[0] != ino[0] or k == key and i != ino or not read_only)]
        for k in stale:  # cursors still running keep an old database alive until they finish
            db = _HANDLES.pop(k)[1]
            if not read_only:
                db.close()  # DuckDB refuses a second, writable handle on the same file
        if not read_only:
            return duckdb.connect(str(path), read_only=False)
        cached = _HANDLES.get(key)
        if cached is None:
            _HANDLES[key] = cached = (ino, _locked_reader(path, results if ino[1] is not None else None, memory_limit))
        cursor = cached[1].cursor()
    cursor.execute(f"USE {_ALIAS}")
    if cached[0][1] is not None:  # unqualified names: the catalog first, then the results
        cursor.execute(f"SET search_path = '{_ALIAS}.main,{_RESULTS_ALIAS}.main'")
    return cursor


def _open(root: Path, read_only: bool, memory_limit: str = QUERY_MEMORY_LIMIT,
          with_results: bool = True) -> tuple[duckdb.DuckDBPyConnection, dict]:
    path = root / CATALOG_NAME
    if not path.exists():
        raise CatalogMissingError(f"no catalog in {root} yet: `genzoo catalog refresh` (the `catalog` asset) builds it")
    con = _database(path, read_only, memory_limit, with_results)
    try:
        row = con.execute(f"SELECT data_dir, refreshed_at, views FROM {_INFO_TABLE}").fetchone()
    except duckdb.CatalogException:
        row = (None, None, "[]")
    except duckdb.Error as exc:  # e.g. a truncated file whose header still attaches
        con.close()
        raise CatalogQueryError(f"the catalog {path} cannot be read ({_one_line(exc)}): {REFRESH_HINT}") from exc
    info = dict(zip(("data_dir", "refreshed_at", "views"), row))
    if info["data_dir"] != root.as_posix():
        con.close()
        raise CatalogMissingError(f"the catalog {path} was made for {info['data_dir']}: {REFRESH_HINT}")
    return con, info


def _refusal(exc: duckdb.Error) -> bool:
    text = str(exc)
    return isinstance(exc, duckdb.PermissionException) or "read-only mode" in text or "has been locked" in text


@contextlib.contextmanager
def _errors(sql: str, path: Path, memory_limit: str) -> Iterator[None]:
    """DuckDB errors of ``sql`` as one-line :class:`CatalogQueryError` naming the SQL."""
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        raise CatalogQueryError(f"catalog query {sql!r} needs more than its memory limit of {memory_limit}: "
                                "filter or aggregate it, or raise the limit (--memory-limit)") from exc
    except duckdb.Error as exc:
        if _refusal(exc):
            raise CatalogQueryError(f"catalog query {sql!r} refused: the catalog is read-only and queries cannot "
                                    f"reach files, extensions or settings ({_one_line(exc)})") from exc
        if isinstance(exc, (duckdb.IOException, duckdb.SerializationException)) or "Corrupt" in str(exc):
            raise CatalogQueryError(f"the catalog {path} cannot be read ({_one_line(exc)}): {REFRESH_HINT}") from exc
        raise CatalogQueryError(f"catalog query {sql!r} failed on {path}: {_one_line(exc)}") from exc


@contextlib.contextmanager
def _executed(sql: str, data_dir, read_only: bool, memory_limit: str,
              with_results: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    root = _root(data_dir)
    con, _ = _open(root, read_only, memory_limit, with_results)
    try:
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise CatalogQueryError(f"cannot parse catalog query {sql!r}: {_one_line(exc)}") from exc
        if len(statements) != 1:  # a usage check: the read-only handle is what protects
            raise CatalogQueryError(f"catalog query must be exactly one statement, got {len(statements)}: {sql!r}")
        with _errors(sql, root / CATALOG_NAME, memory_limit):
            con.execute(sql)
            yield con
    finally:
        con.close()


def query(sql: str, data_dir: str | os.PathLike | None = None, read_only: bool = True, limit: int | None = None,
          memory_limit: str = QUERY_MEMORY_LIMIT, with_results: bool = True) -> pd.DataFrame:
    """Run ONE SQL statement against the catalog and return (at most ``limit`` rows of) its result.

    Read-only by default, whatever the statement: it runs on :func:`_locked_reader`'s handle,
    where writes to the catalog, every file and network access, extensions and settings are
    refused by DuckDB itself (no statement-type check). With ``read_only=False`` any statement
    runs on a writable connection (code only, never the CLI), but the catalog file is rebuilt on
    every refresh, so objects created in it do not last. A missing catalog, or one made for another
    (moved) data directory, is a :class:`CatalogMissingError`: only the ``catalog`` asset writes
    it (the `genzoo` command materialises that asset and asks again). It is a snapshot: partitions
    written since the last ``refresh_catalog`` (the Dagster ``catalog`` asset) are not seen until
    the next one. ``with_results=False`` leaves ``results.duckdb`` out (the catalog asset: it never
    reads its descendants, so a corrupt results file cannot stop the catalog's own refresh).
    """
    with _executed(sql, data_dir, read_only, memory_limit, with_results) as con:
        if limit is None:
            return con.fetchdf()
        parts = [con.fetch_df_chunk(1)]  # 2048 rows at a time: a huge result is never materialised
        while not parts[-1].empty and sum(map(len, parts)) < limit:
            parts.append(con.fetch_df_chunk(1))
        return pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True).iloc[:limit]


def query_batches(sql: str, data_dir: str | os.PathLike | None = None, vectors: int = 8,
                  memory_limit: str = QUERY_MEMORY_LIMIT) -> Iterator[pd.DataFrame]:
    """The read-only result of ``sql`` streamed in DataFrames of up to ``vectors`` × 2048 rows,
    for exports of any size in bounded memory. The first frame carries the columns even when empty."""
    with _executed(sql, data_dir, True, memory_limit) as con:
        part = con.fetch_df_chunk(vectors)
        yield part
        while not part.empty:
            part = con.fetch_df_chunk(vectors)
            if not part.empty:
                yield part


def close_catalogs() -> None:
    """Close this process's cached catalog handles (e.g. before deleting a data directory)."""
    with _HANDLES_LOCK:
        for _, db in _HANDLES.values():
            db.close()
        _HANDLES.clear()
