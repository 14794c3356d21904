"""The DuckDB catalog: a SNAPSHOT of every Parquet table, in DuckDB's own columnar storage.

Partition runs write only Parquet (one file per partition, atomically): that is the source of
truth. ``refresh_catalog`` copies it into ``catalog.duckdb`` as native tables, so a query reads one
columnar file instead of paying per-file costs on thousands of small partition files (measured
0.2+ ms per file per query). The catalog is therefore as of the last refresh: new or rewritten
partitions appear after ``genzoo catalog refresh`` or the Dagster ``catalog`` asset, which runs
automatically after new partitions are materialised (in a pool of limit 1).

One wide table. Every per-sample table lives in ONE native table, ``_snap_samples``: a row per
sample and partition (species × shard), the stages' columns side by side (``<table>.<column>``,
the keys ``sample_id, species, shard, index`` once) and ``_file_<table>``, the Parquet file the
table's columns came from (NULL where that stage has not written the partition yet). The public
names are views over it: ``shape_params`` ... ``images`` project their own columns back under
their own names for exactly the rows whose ``_file_<table>`` is set, ``samples`` is the rows
with shape parameters plus the species columns and one merged ``provenance``. The previous
layout, one table per stage joined on ``sample_id`` in the ``samples`` view, hash-joined six
1 M-row tables per query (DuckDB keeps unused LEFT JOINs); the wide table scans only the columns
a query names. ``bench/catalog.py`` at 1 M samples (load 4.2-4.8): aggregates 40-50 ms against
694-800 ms for the join, two species 55 against 321 ms, one species or one sample 34-62 against
42-66 ms, of which ~20 ms (17-28) is opening the catalog (a new DuckDB instance). Species
stays its own table (``_snap_species``, ~1 k rows) joined per query: ~8 ms at 1 M, where stored
species columns would rewrite every row at each ``genzoo species add``. A sample's rows are
joined within its partition (``_part``, ``<species>/<shard>`` from the file path): sample ids
derive from (species, shard, index), so every stage writes a sample in the same partition.

Incremental, in place. A refresh changes ``catalog.duckdb`` inside ONE DuckDB transaction: for
each partition with a new, rewritten or deleted file it deletes the partition's rows and inserts
them again from the partition's (up to six, small) files, joined on ``sample_id``. DuckDB's
write-ahead log makes an interrupted refresh (exception, kill, power loss) roll back to the
previous catalog; a new column is added (``ALTER TABLE``), a changed type rebuilds in full.
Readers never see a half-updated file: every query holds a shared ``flock`` on
``catalog.duckdb.lock`` while its read-only handle is open, and the refresh takes it exclusively
(so a query waits for the refresh, well under a second). Handles are never cached across
queries: a cached one would hold DuckDB's own file lock and keep the refresh out. When a reader keeps it past
``WRITE_WAIT_S`` (a
long export stream) or a process outside the lock holds the file (``duckdb -readonly``), the
refresh copies the file, updates the copy and renames it into place instead (the old way: the
reader keeps its snapshot, the refresh is slow but never blocked). A full build (first refresh,
``full=True``, another data directory or format, a type change) also writes a new file and renames.
At 1 M samples an in-place refresh after one new, one rewritten or no changed partition takes
0.15-0.25 s (20 new partitions in a row: 0.17-0.47 s, no growth), against 7-32 s for the
previous copy-the-file refresh; a full build 114-154 s (90 s before: the per-partition join costs
more than six plain copies, and a full build is rare). Deleted rows
leave free blocks that DuckDB reuses; rewritten partitions are appended at the end, so species
clustering loosens with many rewrites until a ``--full`` rebuild.

Incremental listing. The refresh does not stat every partition file (94 k at 1 M samples): it
keeps each ``<table>/`` and ``<table>/<species>/`` directory's mtime (``_catalog_dirs``) and lists
only the directories whose mtime changed. Writers rename files into place (``atomic_path``),
which updates the directory's mtime. A directory modified within ``RACY_NS`` of the listing is
recorded as unsettled and listed again next time (git's racy-index rule: a rename in the same
timestamp tick as the listing would otherwise go unseen). What this misses is a file rewritten
in place without a rename (no writer here does that): ``genzoo catalog refresh --full`` then
rebuilds from scratch. Rows are tracked by the file they came from (``_catalog_files``: path,
size, mtime, inode), so a rewritten partition replaces its rows (reruns never duplicate), a
deleted one loses them, and temporary files (dot-prefixed ``.tmp``) are never listed.

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
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from genzoo_assets.core import paths

CATALOG_NAME = "catalog.duckdb"
LOCK_NAME = f"{CATALOG_NAME}.lock"  # readers hold it shared, an in-place refresh exclusively
RESULTS_NAME = "results.duckdb"  # written by ``results.refresh_results``; attached by queries
FORMAT = 3  # bump when the snapshot layout changes: an older catalog is rebuilt, not reused
SAMPLE_TABLES = ("shape_params", "pose_params", "control_renders", "captions", "prompts", "images")
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
_UNSETTLED = -1
_INFO_TABLE = "_catalog_info"
_FILES_TABLE = "_catalog_files"
_DIRS_TABLE = "_catalog_dirs"
_WIDE = "_snap_samples"
_SPECIES = "_snap_species"
_PART = "_part"
_FILE_COL = "_file"
# Float compressors (ALP, Chimp...) cost more CPU than they save on sampled parameters.
_WRITE_CONFIG = {"disabled_compression_methods": "alp,alprd,chimp,patas"}


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


def _wide_col(table: str, col: str) -> str:
    """The column of ``_snap_samples`` that holds ``table.col`` (the keys are shared)."""
    return col if col in KEY_COLUMNS else f"{table}.{col}"


def _file_col(table: str) -> str:
    return f"_file_{table}"


# --- listing -------------------------------------------------------------------------------------

_FILE_FIELDS = ("tbl", "dir", "part", "path", "size", "mtime_ns", "inode")


@dataclass
class _Listing:
    """What the data directory holds now, as far as it had to be listed."""

    dirs: dict[str, int] = field(default_factory=dict)  # every table and species folder -> mtime_ns
    scanned: set[str] = field(
        default_factory=set
    )  # folders listed now (or gone): their files are below
    files: list[tuple] = field(
        default_factory=list
    )  # _FILE_FIELDS rows of the scanned folders' files


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except (FileNotFoundError, NotADirectoryError):
        return None


def _scan(table: str, folder: str) -> list[tuple]:
    """``<table>/<species>/<shard>.parquet`` rows of one species folder, via ``os.scandir``."""
    rows = []
    species = os.path.basename(folder)
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):  # removed while listing
        return rows
    for e in entries:
        if not e.name.endswith(".parquet") or e.name.startswith("."):
            continue
        try:
            if not e.is_file():
                continue
            st = e.stat()
        except FileNotFoundError:  # deleted while listing
            continue
        rows.append(
            (
                table,
                folder,
                f"{species}/{e.name[: -len('.parquet')]}",
                Path(e.path).as_posix(),
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
            )
        )
    return rows


def _list(root: Path, known: dict[str, int]) -> _Listing:
    """Stat every table and species folder; list the files only of those whose mtime is not the
    ``known`` one (new, changed or unsettled folders). ``known`` empty: list everything."""
    now = time.time_ns()
    out = _Listing()
    children: dict[str, list[str]] = {}
    for d in known:
        children.setdefault(os.path.dirname(d), []).append(d)
    species_file = (root / "species" / "species.parquet").as_posix()
    out.scanned.add(os.path.dirname(species_file))  # one file: always looked at
    try:
        st = os.stat(species_file)
        out.files.append(
            (
                "species",
                os.path.dirname(species_file),
                None,
                species_file,
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
            )
        )
    except FileNotFoundError:
        pass
    for table in SAMPLE_TABLES:
        tdir = (root / table).as_posix()
        if (mtime := _mtime(tdir)) is None:
            continue
        if known.get(tdir) == mtime:
            species_dirs = children.get(tdir, [])
        else:
            try:
                species_dirs = [
                    Path(e.path).as_posix()
                    for e in os.scandir(tdir)
                    if not e.name.startswith(".") and e.is_dir()
                ]
            except (FileNotFoundError, NotADirectoryError):
                continue
        out.dirs[tdir] = mtime if mtime < now - RACY_NS else _UNSETTLED
        for sdir in species_dirs:
            if (m := _mtime(sdir)) is None:
                continue
            if known.get(sdir) != m:
                out.files.extend(_scan(table, sdir))
                out.scanned.add(sdir)
            out.dirs[sdir] = m if m < now - RACY_NS else _UNSETTLED
    out.scanned.update(
        d for d in known if d not in out.dirs
    )  # folders that are gone: their files too
    return out


# --- building ------------------------------------------------------------------------------------


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {_ident(table)}").fetchall()]


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [table]
        ).fetchone()[0]
    )


def samples_columns(
    columns: dict[str, list[str]], species_columns: list[str]
) -> list[tuple[str, str, str]]:
    """``samples``'s columns as (table, column, output name): the keys, then each stage's columns in
    stage order (a name taken by an earlier one becomes ``<table>_<column>``), then the species
    columns (``species_<column>`` on a clash). ``columns``: each present stage's column names."""
    taken = set(KEY_COLUMNS) | {"provenance"}
    out = [("shape_params", c, c) for c in KEY_COLUMNS]
    for table in SAMPLE_TABLES:
        for col in columns.get(table, []):
            if col in KEY_COLUMNS or col == "provenance":
                continue
            name = col if col not in taken else f"{table}_{col}"
            taken.add(name)
            out.append((table, col, name))
    if "key" in species_columns:
        for col in SPECIES_JOIN_COLUMNS:
            if col in species_columns:
                name = col if col not in taken else f"species_{col}"
                taken.add(name)
                out.append(("species", col, name))
    return out


def _samples_sql(columns: dict[str, list[str]], species_columns: list[str]) -> str:
    """The rows with shape parameters, every stage's columns, the species' and one merged provenance."""
    select = [
        f"sp.{_ident(c)} AS {_ident(o)}"
        if t == "species"
        else f"w.{_ident(_wide_col(t, c))} AS {_ident(o)}"
        for t, c, o in samples_columns(columns, species_columns)
    ]
    prov = [
        f"{_lit(t)}, TRY_CAST(w.{_ident(_wide_col(t, 'provenance'))} AS JSON)"
        for t in SAMPLE_TABLES
        if "provenance" in columns.get(t, [])
    ]
    select.append(
        f"json_object({', '.join(prov)}) AS provenance" if prov else "NULL::JSON AS provenance"
    )
    join = f" LEFT JOIN {_SPECIES} sp ON sp.key = w.species" if "key" in species_columns else ""
    return (
        f"SELECT {', '.join(select)} FROM {_WIDE} w{join} "
        f"WHERE w.{_ident(_file_col('shape_params'))} IS NOT NULL"
    )


def _read_sql(root: Path, table: str, files: list[str]) -> str:
    """Rows of ``files`` with their file (``_file``) and partition (``_part``, from the path)."""
    listing = ", ".join(_lit(f) for f in files)
    prefix = len((root / table).as_posix()) + 2
    return (
        f"SELECT *, {_FILE_COL}[{prefix}:-9] AS {_PART} FROM read_parquet([{listing}], hive_partitioning=false, "
        f"union_by_name=true, filename={_lit(_FILE_COL)})"
    )


def _ingest(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    files: dict[str, list[str]],
    columns: dict[str, list[str]],
) -> None:
    """Insert the rows of some partitions' ``files`` (table -> paths) into ``_snap_samples``: each
    table's rows joined on (partition, sample_id), new columns added, ``columns`` extended."""
    staged = []
    for i, (table, paths_) in enumerate(files.items()):
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _t{i} AS {_read_sql(root, table, paths_)}")
        except duckdb.Error as exc:  # a bad partition file: a full rebuild would fail on it too
            raise CatalogQueryError(
                f"cannot build the catalog for {root}: {_one_line(exc)}"
            ) from exc
        cols = [c for c, _ in _columns(con, f"_t{i}") if c not in (_FILE_COL, _PART)]
        if "sample_id" not in cols:
            raise CatalogQueryError(
                f"{paths_[0]} has no sample_id column: cannot catalog table {table}"
            )
        known = columns.setdefault(table, [])
        known.extend(c for c in cols if c not in known)
        staged.append((f"_t{i}", table, cols))
    keys = " UNION ".join(f"SELECT {_PART}, sample_id FROM {t}" for t, _, _ in staged)
    select = [f"k.{_PART}", "k.sample_id"]
    for key in KEY_COLUMNS[1:]:
        having = [f"{t}.{_ident(key)}" for t, _, cols in staged if key in cols]
        if having:
            select.append(f"coalesce({', '.join(having)}) AS {_ident(key)}")
    joins = []
    for t, table, cols in staged:
        select.append(f"{t}.{_FILE_COL} AS {_ident(_file_col(table))}")
        select.extend(
            f"{t}.{_ident(c)} AS {_ident(_wide_col(table, c))}"
            for c in cols
            if c not in KEY_COLUMNS
        )
        joins.append(f"LEFT JOIN {t} ON {t}.{_PART} = k.{_PART} AND {t}.sample_id = k.sample_id")
    # In batch order (partitions sorted): rows stay clustered by species across row groups.
    joined = f"SELECT {', '.join(select)} FROM ({keys}) k {' '.join(joins)}"
    if not _exists(con, _WIDE):
        con.execute(f"CREATE TABLE {_WIDE} AS {joined}")
    else:
        have = dict(_columns(con, _WIDE))
        for col, kind, *_ in con.execute(f"DESCRIBE {joined}").fetchall():  # binds, runs nothing
            if col not in have:
                con.execute(f"ALTER TABLE {_WIDE} ADD COLUMN {_ident(col)} {kind}")
            elif have[col] != kind:
                raise _Rebuild(f"column {col} changed type from {have[col]} to {kind}")
        con.execute(f"INSERT INTO {_WIDE} BY NAME {joined}")
    for t, _, _ in staged:
        con.execute(f"DROP TABLE {t}")


def _frame(rows: list[tuple], names: tuple[str, ...], ints: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(names))
    return frame.astype({c: ("int64" if c in ints else object) for c in names})


def _views(con: duckdb.DuckDBPyConnection, columns: dict[str, list[str]]) -> list[str]:
    """(Re)create the public views over the snapshot; their names, ``samples`` last."""
    present = {t for (t,) in con.execute(f"SELECT DISTINCT tbl FROM {_FILES_TABLE}").fetchall()}
    for name in ("species", *SAMPLE_TABLES, "samples"):
        con.execute(f"DROP VIEW IF EXISTS {_ident(name)}")
    views = []
    species_columns: list[str] = []
    if "species" in present:
        con.execute(f"CREATE VIEW species AS FROM {_SPECIES}")
        species_columns = [c for c, _ in _columns(con, _SPECIES)]
        views.append("species")
    tables = {t: columns[t] for t in SAMPLE_TABLES if t in present}
    for table, cols in tables.items():
        select = ", ".join(f"{_ident(_wide_col(table, c))} AS {_ident(c)}" for c in cols)
        con.execute(
            f"CREATE VIEW {_ident(table)} AS SELECT {select} FROM {_WIDE} "
            f"WHERE {_ident(_file_col(table))} IS NOT NULL"
        )
        views.append(table)
    if "shape_params" in tables:
        con.execute(f"CREATE VIEW samples AS {_samples_sql(tables, species_columns)}")
        views.append("samples")
    return views


def _drop_ad_hoc(con: duckdb.DuckDBPyConnection) -> None:
    """Drop what ``query(read_only=False)`` created in the catalog: it does not last."""
    keep = {
        "species",
        *SAMPLE_TABLES,
        "samples",
        _SPECIES,
        _WIDE,
        _FILES_TABLE,
        _DIRS_TABLE,
        _INFO_TABLE,
    }
    for kind, sql in (
        ("VIEW", "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary"),
        ("TABLE", "SELECT table_name FROM duckdb_tables() WHERE NOT internal AND NOT temporary"),
        (
            "MACRO",
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'macro' "
            "AND NOT internal",
        ),
        ("SEQUENCE", "SELECT sequence_name FROM duckdb_sequences() WHERE NOT temporary"),
    ):
        for (name,) in con.execute(sql).fetchall():
            if name not in keep:
                con.execute(f"DROP {kind} IF EXISTS {_ident(name)} CASCADE")


def _apply(
    con: duckdb.DuckDBPyConnection, root: Path, listing: _Listing, columns: dict[str, list[str]]
) -> None:
    """Bring the snapshot in line with ``listing``: the partitions with a new, changed or deleted
    file lose their rows and get them again from their current files."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {_FILES_TABLE} (tbl VARCHAR, dir VARCHAR, part VARCHAR, path VARCHAR, "
        "size BIGINT, mtime_ns BIGINT, inode BIGINT)"
    )
    con.register("_scan_files", _frame(listing.files, _FILE_FIELDS, ("size", "mtime_ns", "inode")))
    con.register("_scan_dirs", _frame([(d,) for d in listing.scanned], ("dir",), ()))
    old = f"SELECT * FROM {_FILES_TABLE} WHERE dir IN (SELECT dir FROM _scan_dirs)"
    changed = con.execute(
        f"SELECT DISTINCT tbl, part FROM (({old}) EXCEPT (FROM _scan_files) UNION ALL "
        f"(FROM _scan_files EXCEPT ({old})))"
    ).fetchall()
    con.execute(f"DELETE FROM {_FILES_TABLE} WHERE dir IN (SELECT dir FROM _scan_dirs)")
    con.execute(f"INSERT INTO {_FILES_TABLE} FROM _scan_files")
    read = 0
    if ("species", None) in changed:
        con.execute(f"DROP TABLE IF EXISTS {_SPECIES}")
        found = con.execute(f"SELECT path FROM {_FILES_TABLE} WHERE tbl = 'species'").fetchone()
        if found:
            con.execute(f"CREATE TABLE {_SPECIES} AS FROM read_parquet({_lit(found[0])})")
            read += 1
    parts = sorted({p for t, p in changed if t != "species"})
    if parts:
        con.register("_parts", _frame([(p,) for p in parts], ("part",), ()))
        if _exists(con, _WIDE):
            con.execute(f"DELETE FROM {_WIDE} WHERE {_PART} IN (SELECT part FROM _parts)")
        rows = con.execute(
            f"SELECT part, tbl, path FROM {_FILES_TABLE} WHERE part IN (SELECT part FROM _parts) "
            "ORDER BY part, path"
        ).fetchall()
        read += len(rows)
        for start in range(0, len(parts), BATCH_PARTITIONS):
            batch = set(parts[start : start + BATCH_PARTITIONS])
            files: dict[str, list[str]] = {}
            for part, table, path in rows:
                if part in batch:
                    files.setdefault(table, []).append(path)
            if files:
                _ingest(con, root, {t: files[t] for t in SAMPLE_TABLES if t in files}, columns)
    views = _views(con, columns)
    con.execute(f"CREATE OR REPLACE TABLE {_DIRS_TABLE} AS FROM _dirs_now")
    total = con.execute(f"SELECT count(*) FROM {_FILES_TABLE}").fetchone()[0]
    con.execute(
        f"CREATE OR REPLACE TABLE {_INFO_TABLE} (data_dir VARCHAR, refreshed_at VARCHAR, views VARCHAR, "
        "format INTEGER, files_reused INTEGER, files_read INTEGER, columns VARCHAR)"
    )
    con.execute(
        f"INSERT INTO {_INFO_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            root.as_posix(),
            datetime.now(UTC).isoformat(timespec="seconds"),
            json.dumps(views),
            FORMAT,
            total - read,
            read,
            json.dumps(columns),
        ],
    )
    for name in ("_scan_files", "_scan_dirs", "_parts"):
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


def _known(
    con: duckdb.DuckDBPyConnection, root: Path
) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The folders' mtimes and the stages' columns recorded in a previous snapshot; raises _Rebuild
    when it cannot be built on (another data directory or format, an older layout)."""
    try:
        info = con.execute(f"SELECT data_dir, format, columns FROM {_INFO_TABLE}").fetchone()
        dirs = dict(con.execute(f"SELECT path, mtime_ns FROM {_DIRS_TABLE}").fetchall())
    except duckdb.Error as exc:  # an older layout, or a damaged file
        raise _Rebuild(str(exc)) from exc
    if info is None or info[:2] != (root.as_posix(), FORMAT):
        raise _Rebuild("made for another data directory or format")
    return dirs, json.loads(info[2])


def _update(con: duckdb.DuckDBPyConnection, root: Path, full: bool = False) -> None:
    """Update the snapshot ``con`` holds (an empty one when ``full``) in one transaction."""
    dirs, columns = ({}, {}) if full else _known(con, root)
    listing = _list(root, dirs)
    con.register(
        "_dirs_now", _frame(list(listing.dirs.items()), ("path", "mtime_ns"), ("mtime_ns",))
    )
    con.execute("BEGIN TRANSACTION")
    try:
        if not full:
            _drop_ad_hoc(con)
        _apply(con, root, listing, columns)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_dirs_now")
    con.execute(f"CHECKPOINT {_ALIAS}")


def _writer(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection that writes the catalog ``path`` (attached as its default database) in row
    groups of ROW_GROUP_SIZE rows."""
    con = duckdb.connect(config=_WRITE_CONFIG)
    try:
        con.execute(f"ATTACH {_lit(str(path))} AS {_ALIAS} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        con.execute(f"USE {_ALIAS}")
    except duckdb.Error:
        con.close()
        raise
    return con


def _in_place(root: Path, target: Path) -> bool:
    """Update ``target`` itself under the exclusive lock; False when it cannot be (readers still on
    it after WRITE_WAIT_S, a process outside the lock holding it, not a catalog DuckDB can open)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(paths.file_lock(root / LOCK_NAME, timeout=WRITE_WAIT_S))
        except TimeoutError:
            return False
        try:
            con = _writer(target)
        except duckdb.Error:
            return False
        try:
            _update(con, root)
        finally:
            con.close()
        return True


def _on_copy(root: Path, target: Path) -> bool:
    """Update a copy of ``target`` and rename it into place; False when there is none to build on.

    The copy is taken while attached read-only, i.e. under DuckDB's shared lock, so no writer is
    mid-checkpoint; readers hold only shared locks and never block it.
    """
    if Path(f"{target}.wal").exists():
        return False
    try:
        held = _attach_read_only(target)
    except duckdb.Error:  # held by a writer, or not a DuckDB file
        return False
    with paths.atomic_path(target) as tmp:
        try:
            shutil.copyfile(target, tmp)
        finally:
            held.close()
        _write(tmp, root, full=False)
    return True


def _write(tmp: Path, root: Path, full: bool) -> None:
    if full:
        tmp.unlink(missing_ok=True)  # atomic_path's empty placeholder is no DuckDB file
    con = _writer(tmp)
    try:
        _update(con, root, full)
    finally:
        con.close()
        Path(f"{tmp}.wal").unlink(missing_ok=True)


def refresh_catalog(data_dir: str | os.PathLike | None = None, full: bool = False) -> Path:
    """Bring ``<data_dir>/catalog.duckdb`` in line with the Parquet files: in place, reading only the
    partitions that changed since the previous snapshot; ``full`` (or no usable previous one):
    rebuilt from every file into a new file renamed into place."""
    root = _root(data_dir)
    target = root / CATALOG_NAME
    root.mkdir(parents=True, exist_ok=True)
    (root / LOCK_NAME).open(
        "a"
    ).close()  # made by the writer: a query leaves the data directory as it was
    try:
        if not full and target.is_file():
            for way in (_in_place, _on_copy):
                try:
                    if way(root, target):
                        return target
                except (_Rebuild, duckdb.Error):  # incl. a changed column type
                    break
        with paths.atomic_path(target) as tmp:
            _write(tmp, root, full=True)
    except duckdb.Error as exc:
        raise CatalogQueryError(f"cannot build the catalog for {root}: {_one_line(exc)}") from exc
    return target


def catalog_views(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the views in the current catalog (CatalogMissingError when there is none)."""
    with _opened(_root(data_dir), True, with_results=False) as (_, info):
        return json.loads(info["views"])


_ALIAS = "catalog"
_RESULTS_ALIAS = "results"


def _attach_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory database with ``path`` attached read-only (the refresh holds it while copying).
    ``duckdb.connect(path)`` would reuse this process's open instance for that path, if any."""
    db = duckdb.connect()
    try:
        db.execute(f"ATTACH {_lit(str(path))} AS {_ALIAS} (READ_ONLY)")
    except duckdb.Error:
        db.close()
        raise
    return db


def _locked_reader(
    path: Path, results: Path | None, memory_limit: str
) -> duckdb.DuckDBPyConnection:
    """The handle user SQL runs on: ``path`` (and ``results.duckdb`` when given) attached read-only,
    then external access off and the configuration locked, so no statement (``COPY``, ``ATTACH``,
    ``read_csv``, ``INSTALL``, ``SET``, any of them inside ``EXPLAIN ANALYZE``) can read or write a
    file or reach the network. What is left writable is this process's in-memory scratch database
    (temp tables), capped with the rest by ``memory_limit``; with no temp directory, DuckDB never
    spills to disk."""
    try:
        db = duckdb.connect(
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "memory_limit": memory_limit,
                "temp_directory": "",
            }
        )
    except duckdb.Error as exc:
        raise CatalogQueryError(
            f"memory limit {memory_limit!r} is not a size such as '2GB' ({_one_line(exc)})"
        ) from exc
    try:
        try:
            db.execute(f"ATTACH {_lit(str(path))} AS {_ALIAS} (READ_ONLY)")
        except duckdb.Error as exc:
            raise CatalogQueryError(
                f"the catalog {path} cannot be opened ({_one_line(exc)}): {REFRESH_HINT}"
            ) from exc
        if results is not None:
            try:
                db.execute(f"ATTACH {_lit(str(results))} AS {_RESULTS_ALIAS} (READ_ONLY)")
            except duckdb.Error as exc:
                raise CatalogQueryError(
                    f"the results file {results} cannot be opened ({_one_line(exc)}): "
                    "`genzoo catalog refresh` rebuilds it"
                ) from exc
        db.execute("SET enable_external_access = false")
        db.execute("SET lock_configuration = true")
        db.execute(f"USE {_ALIAS}")
        if results is not None:  # unqualified names: the catalog first, then the results
            db.execute(f"SET search_path = '{_ALIAS}.main,{_RESULTS_ALIAS}.main'")
    except BaseException:
        db.close()
        raise
    return db


def _database(
    path: Path, read_only: bool, memory_limit: str = QUERY_MEMORY_LIMIT, with_results: bool = True
) -> duckdb.DuckDBPyConnection:
    """A new handle per query (the caller holds the catalog's lock while it is open): a cached one
    would hold DuckDB's file lock and keep the in-place refresh out."""
    if not read_only:
        return duckdb.connect(str(path), read_only=False)
    results = path.parent / RESULTS_NAME
    return _locked_reader(
        path, results if with_results and results.exists() else None, memory_limit
    )


@contextlib.contextmanager
def _opened(
    root: Path, read_only: bool, memory_limit: str = QUERY_MEMORY_LIMIT, with_results: bool = True
) -> Iterator[tuple[duckdb.DuckDBPyConnection, dict]]:
    """The catalog's handle and its ``_catalog_info``, under the catalog's lock (shared when
    ``read_only``), so an in-place refresh never runs while the handle is open."""
    path = root / CATALOG_NAME
    if not path.exists():
        raise CatalogMissingError(
            f"no catalog in {root} yet: `genzoo catalog refresh` (the `catalog` asset) builds it"
        )
    lock = root / LOCK_NAME
    # Every refresh makes the lock file before it writes in place; without one (a catalog copied
    # here, or made by hand) no writer can be mid-update, and DuckDB's own file lock sends one that
    # starts now to a copy. A query never creates it: it leaves the data directory as it found it.
    held = (
        paths.file_lock(lock, shared=read_only)
        if not read_only or lock.exists()
        else contextlib.nullcontext()
    )
    with held:
        if not path.exists():  # removed while waiting
            raise CatalogMissingError(
                f"no catalog in {root} yet: `genzoo catalog refresh` (the `catalog` asset) "
                "builds it"
            )
        con = _database(path, read_only, memory_limit, with_results)
        try:
            try:
                row = con.execute(
                    f"SELECT data_dir, refreshed_at, views FROM {_INFO_TABLE}"
                ).fetchone()
            except duckdb.CatalogException:
                row = (None, None, "[]")
            except duckdb.Error as exc:  # e.g. a truncated file whose header still attaches
                raise CatalogQueryError(
                    f"the catalog {path} cannot be read ({_one_line(exc)}): {REFRESH_HINT}"
                ) from exc
            info = dict(zip(("data_dir", "refreshed_at", "views"), row))
            if info["data_dir"] != root.as_posix():
                raise CatalogMissingError(
                    f"the catalog {path} was made for {info['data_dir']}: {REFRESH_HINT}"
                )
            yield con, info
        finally:
            con.close()


def _refusal(exc: duckdb.Error) -> bool:
    text = str(exc)
    return (
        isinstance(exc, duckdb.PermissionException)
        or "read-only mode" in text
        or "has been locked" in text
    )


@contextlib.contextmanager
def _errors(sql: str, path: Path, memory_limit: str) -> Iterator[None]:
    """DuckDB errors of ``sql`` as one-line :class:`CatalogQueryError` naming the SQL."""
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        raise CatalogQueryError(
            f"catalog query {sql!r} needs more than its memory limit of {memory_limit}: "
            "filter or aggregate it, or raise the limit (--memory-limit)"
        ) from exc
    except duckdb.Error as exc:
        if _refusal(exc):
            raise CatalogQueryError(
                f"catalog query {sql!r} refused: the catalog is read-only and queries cannot "
                f"reach files, extensions or settings ({_one_line(exc)})"
            ) from exc
        if isinstance(exc, (duckdb.IOException, duckdb.SerializationException)) or "Corrupt" in str(
            exc
        ):
            raise CatalogQueryError(
                f"the catalog {path} cannot be read ({_one_line(exc)}): {REFRESH_HINT}"
            ) from exc
        raise CatalogQueryError(
            f"catalog query {sql!r} failed on {path}: {_one_line(exc)}"
        ) from exc


@contextlib.contextmanager
def _executed(
    sql: str, data_dir, read_only: bool, memory_limit: str, with_results: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    root = _root(data_dir)
    with _opened(root, read_only, memory_limit, with_results) as (con, _):
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise CatalogQueryError(
                f"cannot parse catalog query {sql!r}: {_one_line(exc)}"
            ) from exc
        if len(statements) != 1:  # a usage check: the read-only handle is what protects
            raise CatalogQueryError(
                f"catalog query must be exactly one statement, got {len(statements)}: {sql!r}"
            )
        with _errors(sql, root / CATALOG_NAME, memory_limit):
            con.execute(sql)
            yield con


def query(
    sql: str,
    data_dir: str | os.PathLike | None = None,
    read_only: bool = True,
    limit: int | None = None,
    memory_limit: str = QUERY_MEMORY_LIMIT,
    with_results: bool = True,
) -> pd.DataFrame:
    """Run ONE SQL statement against the catalog and return (at most ``limit`` rows of) its result.

    Read-only by default, whatever the statement: it runs on :func:`_locked_reader`'s handle,
    where writes to the catalog, every file and network access, extensions and settings are
    refused by DuckDB itself (no statement-type check). With ``read_only=False`` any statement
    runs on a writable connection under the catalog's exclusive lock (code only, never the CLI),
    but the next refresh drops the objects created in it. A missing catalog, or one made for another
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
        return pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True).iloc[
            :limit
        ]


def query_batches(
    sql: str,
    data_dir: str | os.PathLike | None = None,
    vectors: int = 8,
    memory_limit: str = QUERY_MEMORY_LIMIT,
) -> Iterator[pd.DataFrame]:
    """The read-only result of ``sql`` streamed in DataFrames of up to ``vectors`` × 2048 rows,
    for exports of any size in bounded memory. The first frame carries the columns even when empty."""
    with _executed(sql, data_dir, True, memory_limit) as con:
        part = con.fetch_df_chunk(vectors)
        yield part
        while not part.empty:
            part = con.fetch_df_chunk(vectors)
            if not part.empty:
                yield part
