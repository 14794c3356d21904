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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from genzoo_assets.core import layout, paths
from genzoo_assets.core.catalog.store import (
    ALIAS,
    BATCH_PARTITIONS,
    CATALOG_NAME,
    DIRS_TABLE,
    FILE_COLUMN,
    FILES_TABLE,
    FORMAT,
    INFO_TABLE,
    KEY_COLUMNS,
    LOCK_NAME,
    PART_COLUMN,
    RACY_NS,
    ROW_GROUP_SIZE,
    SAMPLE_TABLES,
    SPECIES_JOIN_COLUMNS,
    SPECIES_TABLE,
    UNSETTLED,
    WAL_SUFFIX,
    WIDE_TABLE,
    WRITE_CONFIG,
    WRITE_WAIT_S,
    WRITER_LOCK_NAME,
    CatalogQueryError,
    attach_read_only,
    one_line,
    root_dir,
    sql_ident,
    sql_literal,
    sql_path,
)

RELIST_TRIES = 5  # a file replaced between listing and reading: list again, at most this often


class _Rebuild(Exception):
    """The previous snapshot cannot be built on incrementally."""


class _Relist(Exception):
    """A listed file was replaced (or removed) before it was read: the listing is stale."""


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


def _inside(path: str, real_root: str) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``real_root`` or below it."""
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root + os.sep)


def _scan(table: str, folder: str, real_root: str) -> list[tuple]:
    """``<table>/<species>/<shard>.parquet`` rows of one species folder, via ``os.scandir``. A
    file or folder that is a symlink out of the data directory (``real_root``) is ignored: the
    catalog holds the data directory's files only."""
    rows = []
    species = os.path.basename(folder)
    if not _inside(folder, real_root):
        return rows
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):  # removed while listing
        return rows
    for e in entries:
        if not e.name.endswith(".parquet") or e.name.startswith("."):
            continue
        try:
            if not e.is_file() or (e.is_symlink() and not _inside(e.path, real_root)):
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
    real_root = os.path.realpath(root)
    children: dict[str, list[str]] = {}
    for d in known:
        children.setdefault(os.path.dirname(d), []).append(d)
    species_file = layout.species_table(root).as_posix()
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
    if out.files and not _inside(species_file, real_root):
        out.files.clear()
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
        out.dirs[tdir] = mtime if mtime < now - RACY_NS else UNSETTLED
        for sdir in species_dirs:
            if (m := _mtime(sdir)) is None:
                continue
            if known.get(sdir) != m:
                out.files.extend(_scan(table, sdir, real_root))
                out.scanned.add(sdir)
            out.dirs[sdir] = m if m < now - RACY_NS else UNSETTLED
    out.scanned.update(
        d for d in known if d not in out.dirs
    )  # folders that are gone: their files too
    return out


# --- building ------------------------------------------------------------------------------------


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {sql_ident(table)}").fetchall()]


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
        f"sp.{sql_ident(c)} AS {sql_ident(o)}"
        if t == "species"
        else f"w.{sql_ident(_wide_col(t, c))} AS {sql_ident(o)}"
        for t, c, o in samples_columns(columns, species_columns)
    ]
    prov = [
        f"{sql_literal(t)}, TRY_CAST(w.{sql_ident(_wide_col(t, 'provenance'))} AS JSON)"
        for t in SAMPLE_TABLES
        if "provenance" in columns.get(t, [])
    ]
    select.append(
        f"json_object({', '.join(prov)}) AS provenance" if prov else "NULL::JSON AS provenance"
    )
    join = (
        f" LEFT JOIN {SPECIES_TABLE} sp ON sp.key = w.species" if "key" in species_columns else ""
    )
    return (
        f"SELECT {', '.join(select)} FROM {WIDE_TABLE} w{join} "
        f"WHERE w.{sql_ident(_file_col('shape_params'))} IS NOT NULL"
    )


def _read_sql(root: Path, table: str, files: list[str]) -> str:
    """Rows of ``files`` with their file (``_file``) and partition (``_part``, from the path)."""
    listing = ", ".join(sql_path(f) for f in files)
    prefix = len((root / table).as_posix()) + 2
    return (
        f"SELECT *, {FILE_COLUMN}[{prefix}:-9] AS {PART_COLUMN} "
        f"FROM read_parquet([{listing}], hive_partitioning=false, "
        f"union_by_name=true, filename={sql_literal(FILE_COLUMN)})"
    )


Stats = dict[str, tuple[int, int, int]]  # path -> (size, mtime_ns, inode) as listed


def _raise_if_moved(files: list[str], stats: Stats) -> None:
    """Raise ``_Relist`` when one of ``files`` is no longer the file that was listed (a writer
    renamed a new one over it, or removed it, since): read by path, it may be another file."""
    for path in files:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise _Relist(path) from None
        if (st.st_size, st.st_mtime_ns, st.st_ino) != stats.get(path):
            raise _Relist(path)


def _kind(t: pa.DataType) -> str:
    """An Arrow type as the catalog compares it: the string, binary and list flavours are one kind
    each; a column of nulls (or lists of nulls) has none (``""``): it fits any kind."""
    if pa.types.is_null(t):
        return ""
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = _kind(t.value_type)
        return f"list<{inner}>" if inner else ""
    return str(t)


def _file_kinds(path: str, stats: Stats) -> dict[str, str]:
    """Each column's kind in the Parquet file ``path`` (its footer only)."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        _raise_if_moved([path], stats)
        raise CatalogQueryError(
            f"{path} is not a readable Parquet file ({exc}): rewrite or remove it"
        ) from exc
    return {f.name: _kind(f.type) for f in schema}


def _check_kinds(
    rows: list[tuple], kinds: dict[str, dict[str, str]], full: bool, stats: Stats
) -> None:
    """Refuse files whose column types disagree, and record the kinds in ``kinds``.

    ``rows``: (partition, table, path) of the files about to be read. DuckDB would widen a column
    whose files disagree (``yaw_deg`` stored as strings in one partition turns it VARCHAR for
    every sample); the catalog never does. Incremental (``full`` False): a disagreement with the
    catalog's kind may be a schema change of every file, so raise ``_Rebuild``; the full build,
    which sees every file, refuses the minority kind's first file naming the column.
    """
    seen: dict[tuple[str, str], dict[str, list[str]]] = {}
    for _part, table, path in rows:  # footers only: 0.8 ms a file (threads were slower)
        for col, kind in _file_kinds(path, stats).items():
            if kind:
                seen.setdefault((table, col), {}).setdefault(kind, []).append(path)
    for (table, col), by_kind in seen.items():
        known = kinds.get(table, {}).get(col)
        agree = len(by_kind) == 1 and known in (None, next(iter(by_kind)))
        if agree:
            continue
        if not full:
            raise _Rebuild(f"column {table}.{col} changed type")
        odd, *rest = sorted(by_kind, key=lambda k: (len(by_kind[k]), k))
        other = rest[-1]
        raise CatalogQueryError(
            f"{by_kind[odd][0]}: column {col!r} is {odd}, but {other} in {len(by_kind[other])} "
            f"other {table} file(s) such as {by_kind[other][0]}: the catalog never mixes or widens "
            f"a column's type; rewrite that partition (materialise it again), then refresh"
        )
    for (table, col), by_kind in seen.items():
        kinds.setdefault(table, {})[col] = next(iter(by_kind))


def _check_unique(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a ``sample_id`` held by more than one row (twice in a file, or in two partitions),
    among the samples of the partitions just read (``_parts``), naming its files."""
    have = {c for c, _ in _columns(con, WIDE_TABLE)}
    file_cols = [sql_ident(_file_col(t)) for t in SAMPLE_TABLES if _file_col(t) in have]
    dup = con.execute(
        f"SELECT sample_id, count(*) FROM {WIDE_TABLE} WHERE sample_id IN "
        f"(SELECT sample_id FROM {WIDE_TABLE} WHERE {PART_COLUMN} IN (SELECT part FROM _parts)) "
        "GROUP BY sample_id HAVING count(*) > 1 ORDER BY sample_id LIMIT 1"
    ).fetchone()
    if dup is None:
        return
    files = con.execute(
        f"SELECT DISTINCT f FROM (SELECT unnest([{', '.join(file_cols)}]) AS f FROM {WIDE_TABLE} "
        "WHERE sample_id = ?) WHERE f IS NOT NULL ORDER BY f",
        [dup[0]],
    ).fetchall()
    raise CatalogQueryError(
        f"sample_id {dup[0]!r} is held by {dup[1]} rows, in {', '.join(f for (f,) in files)}: "
        "a sample is written once; remove the duplicate rows or the stray partition, then refresh"
    )


def _ingest(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    files: dict[str, list[str]],
    columns: dict[str, list[str]],
    stats: Stats,
) -> None:
    """Insert the rows of some partitions' ``files`` (table -> paths) into ``_snap_samples``: each
    table's rows joined on (partition, sample_id), new columns added, ``columns`` extended."""
    staged = []
    for i, (table, paths_) in enumerate(files.items()):
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _t{i} AS {_read_sql(root, table, paths_)}")
        except duckdb.Error as exc:  # a bad partition file: a full rebuild would fail on it too
            _raise_if_moved(paths_, stats)
            raise CatalogQueryError(
                f"cannot build the catalog for {root}: {one_line(exc)}"
            ) from exc
        cols = [c for c, _ in _columns(con, f"_t{i}") if c not in (FILE_COLUMN, PART_COLUMN)]
        if "sample_id" not in cols:
            raise CatalogQueryError(
                f"{paths_[0]} has no sample_id column: cannot catalog table {table}"
            )
        known = columns.setdefault(table, [])
        known.extend(c for c in cols if c not in known)
        staged.append((f"_t{i}", table, cols))
    keys = " UNION ".join(f"SELECT {PART_COLUMN}, sample_id FROM {t}" for t, _, _ in staged)
    select = [f"k.{PART_COLUMN}", "k.sample_id"]
    for key in KEY_COLUMNS[1:]:
        having = [f"{t}.{sql_ident(key)}" for t, _, cols in staged if key in cols]
        if having:
            select.append(f"coalesce({', '.join(having)}) AS {sql_ident(key)}")
    joins = []
    for t, table, cols in staged:
        select.append(f"{t}.{FILE_COLUMN} AS {sql_ident(_file_col(table))}")
        select.extend(
            f"{t}.{sql_ident(c)} AS {sql_ident(_wide_col(table, c))}"
            for c in cols
            if c not in KEY_COLUMNS
        )
        joins.append(
            f"LEFT JOIN {t} ON {t}.{PART_COLUMN} = k.{PART_COLUMN} AND {t}.sample_id = k.sample_id"
        )
    # In batch order (partitions sorted): rows stay clustered by species across row groups.
    joined = f"SELECT {', '.join(select)} FROM ({keys}) k {' '.join(joins)}"
    if not _exists(con, WIDE_TABLE):
        con.execute(f"CREATE TABLE {WIDE_TABLE} AS {joined}")
    else:
        have = dict(_columns(con, WIDE_TABLE))
        for col, kind, *_ in con.execute(f"DESCRIBE {joined}").fetchall():  # binds, runs nothing
            if col not in have:
                con.execute(f"ALTER TABLE {WIDE_TABLE} ADD COLUMN {sql_ident(col)} {kind}")
            elif have[col] != kind:
                raise _Rebuild(f"column {col} changed type from {have[col]} to {kind}")
        con.execute(f"INSERT INTO {WIDE_TABLE} BY NAME {joined}")
    for t, _, _ in staged:
        con.execute(f"DROP TABLE {t}")


def _frame(rows: list[tuple], names: tuple[str, ...], ints: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(names))
    return frame.astype({c: ("int64" if c in ints else object) for c in names})


def _views(con: duckdb.DuckDBPyConnection, columns: dict[str, list[str]]) -> list[str]:
    """(Re)create the public views over the snapshot; their names, ``samples`` last."""
    present = {t for (t,) in con.execute(f"SELECT DISTINCT tbl FROM {FILES_TABLE}").fetchall()}
    for name in ("species", *SAMPLE_TABLES, "samples"):
        con.execute(f"DROP VIEW IF EXISTS {sql_ident(name)}")
    views = []
    species_columns: list[str] = []
    if "species" in present:
        con.execute(f"CREATE VIEW species AS FROM {SPECIES_TABLE}")
        species_columns = [c for c, _ in _columns(con, SPECIES_TABLE)]
        views.append("species")
    tables = {t: columns[t] for t in SAMPLE_TABLES if t in present}
    for table, cols in tables.items():
        select = ", ".join(f"{sql_ident(_wide_col(table, c))} AS {sql_ident(c)}" for c in cols)
        con.execute(
            f"CREATE VIEW {sql_ident(table)} AS SELECT {select} FROM {WIDE_TABLE} "
            f"WHERE {sql_ident(_file_col(table))} IS NOT NULL"
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
        SPECIES_TABLE,
        WIDE_TABLE,
        FILES_TABLE,
        DIRS_TABLE,
        INFO_TABLE,
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
                con.execute(f"DROP {kind} IF EXISTS {sql_ident(name)} CASCADE")


def _apply(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    listing: _Listing,
    columns: dict[str, list[str]],
    kinds: dict[str, dict[str, str]],
    full: bool,
) -> None:
    """Bring the snapshot in line with ``listing``: the partitions with a new, changed or deleted
    file lose their rows and get them again from their current files."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {FILES_TABLE} (tbl VARCHAR, dir VARCHAR, part VARCHAR, path VARCHAR, "
        "size BIGINT, mtime_ns BIGINT, inode BIGINT)"
    )
    con.register("_scan_files", _frame(listing.files, _FILE_FIELDS, ("size", "mtime_ns", "inode")))
    con.register("_scan_dirs", _frame([(d,) for d in listing.scanned], ("dir",), ()))
    old = f"SELECT * FROM {FILES_TABLE} WHERE dir IN (SELECT dir FROM _scan_dirs)"
    changed = con.execute(
        f"SELECT DISTINCT tbl, part FROM (({old}) EXCEPT (FROM _scan_files) UNION ALL "
        f"(FROM _scan_files EXCEPT ({old})))"
    ).fetchall()
    con.execute(f"DELETE FROM {FILES_TABLE} WHERE dir IN (SELECT dir FROM _scan_dirs)")
    con.execute(f"INSERT INTO {FILES_TABLE} FROM _scan_files")
    read = 0
    if ("species", None) in changed:
        con.execute(f"DROP TABLE IF EXISTS {SPECIES_TABLE}")
        found = con.execute(f"SELECT path FROM {FILES_TABLE} WHERE tbl = 'species'").fetchone()
        if found:
            con.execute(f"CREATE TABLE {SPECIES_TABLE} AS FROM read_parquet({sql_path(found[0])})")
            read += 1
    parts = sorted({p for t, p in changed if t != "species"})
    if parts:
        con.register("_parts", _frame([(p,) for p in parts], ("part",), ()))
        if _exists(con, WIDE_TABLE):
            con.execute(
                f"DELETE FROM {WIDE_TABLE} WHERE {PART_COLUMN} IN (SELECT part FROM _parts)"
            )
        listed = con.execute(
            f"SELECT part, tbl, path, size, mtime_ns, inode FROM {FILES_TABLE} "
            "WHERE part IN (SELECT part FROM _parts) ORDER BY part, path"
        ).fetchall()
        rows = [r[:3] for r in listed]
        stats = {r[2]: tuple(r[3:]) for r in listed}
        read += len(rows)
        _check_kinds(rows, kinds, full, stats)
        for start in range(0, len(parts), BATCH_PARTITIONS):
            batch = set(parts[start : start + BATCH_PARTITIONS])
            files: dict[str, list[str]] = {}
            for part, table, path in rows:
                if part in batch:
                    files.setdefault(table, []).append(path)
            if files:
                _ingest(
                    con, root, {t: files[t] for t in SAMPLE_TABLES if t in files}, columns, stats
                )
        if _exists(con, WIDE_TABLE):
            _check_unique(con)
    views = _views(con, columns)
    con.execute(f"CREATE OR REPLACE TABLE {DIRS_TABLE} AS FROM _dirs_now")
    total = con.execute(f"SELECT count(*) FROM {FILES_TABLE}").fetchone()[0]
    con.execute(
        f"CREATE OR REPLACE TABLE {INFO_TABLE} (data_dir VARCHAR, refreshed_at VARCHAR, views VARCHAR, "
        "format INTEGER, files_reused INTEGER, files_read INTEGER, columns VARCHAR, kinds VARCHAR)"
    )
    con.execute(
        f"INSERT INTO {INFO_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            root.as_posix(),
            datetime.now(UTC).isoformat(timespec="seconds"),
            json.dumps(views),
            FORMAT,
            total - read,
            read,
            json.dumps(columns),
            json.dumps(kinds),
        ],
    )
    for name in ("_scan_files", "_scan_dirs", "_parts"):
        with contextlib.suppress(duckdb.Error):
            con.unregister(name)


def _known(
    con: duckdb.DuckDBPyConnection, root: Path
) -> tuple[dict[str, int], dict[str, list[str]], dict[str, dict[str, str]]]:
    """The folders' mtimes, the stages' columns and their kinds recorded in a previous snapshot;
    raises _Rebuild when it cannot be built on (another data directory or format, an older layout)."""
    try:
        info = con.execute(f"SELECT data_dir, format, columns, kinds FROM {INFO_TABLE}").fetchone()
        dirs = dict(con.execute(f"SELECT path, mtime_ns FROM {DIRS_TABLE}").fetchall())
    except duckdb.Error as exc:  # an older layout, or a damaged file
        raise _Rebuild(str(exc)) from exc
    if info is None or info[:2] != (root.as_posix(), FORMAT):
        raise _Rebuild("made for another data directory or format")
    return dirs, json.loads(info[2]), json.loads(info[3])


def _update(con: duckdb.DuckDBPyConnection, root: Path, full: bool = False) -> None:
    """Update the snapshot ``con`` holds (an empty one when ``full``) in one transaction."""
    dirs, columns, kinds = ({}, {}, {}) if full else _known(con, root)
    listing = _list(root, dirs)
    con.register(
        "_dirs_now", _frame(list(listing.dirs.items()), ("path", "mtime_ns"), ("mtime_ns",))
    )
    con.execute("BEGIN TRANSACTION")
    try:
        if not full:
            _drop_ad_hoc(con)
        _apply(con, root, listing, columns, kinds, full)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_dirs_now")
    con.execute(f"CHECKPOINT {ALIAS}")


def _writer(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection that writes the catalog ``path`` (attached as its default database) in row
    groups of ROW_GROUP_SIZE rows."""
    con = duckdb.connect(config=WRITE_CONFIG)
    try:
        con.execute(f"ATTACH {sql_literal(str(path))} AS {ALIAS} (ROW_GROUP_SIZE {ROW_GROUP_SIZE})")
        con.execute(f"USE {ALIAS}")
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
        held = attach_read_only(target)
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
        Path(f"{tmp}{WAL_SUFFIX}").unlink(missing_ok=True)


def _drop_wal(target: Path) -> None:
    """Remove ``target``'s WAL just before a new file is renamed over ``target``: it belongs to the
    old file (a refresh killed between COMMIT and CHECKPOINT leaves one), and beside the new file
    DuckDB refuses to open either (``WAL does not match database file``). Removed first, a kill
    before the rename leaves the old file at its last checkpoint, which opens."""
    Path(f"{target}{WAL_SUFFIX}").unlink(missing_ok=True)


def _refresh(root: Path, target: Path, full: bool) -> None:
    try:
        if not full and target.is_file():
            for way in (_in_place, _on_copy):
                try:
                    if way(root, target):
                        return
                except (_Rebuild, duckdb.Error):  # incl. a changed column type, a broken catalog
                    break
        with paths.atomic_path(target) as tmp:
            _write(tmp, root, full=True)
            _drop_wal(target)
    except duckdb.Error as exc:
        raise CatalogQueryError(f"cannot build the catalog for {root}: {one_line(exc)}") from exc
    except _Rebuild as exc:  # a full build has nothing to rebuild from: the files disagree
        raise CatalogQueryError(f"cannot build the catalog for {root}: {exc}") from exc


def refresh_catalog(data_dir: str | os.PathLike | None = None, full: bool = False) -> Path:
    """Bring ``<data_dir>/catalog.duckdb`` in line with the Parquet files: in place, reading only the
    partitions that changed since the previous snapshot; ``full`` (or no usable previous one, e.g.
    a damaged file): rebuilt from every file into a new file renamed into place.

    Refreshes run one at a time (``catalog.duckdb.writer.lock``; a second one waits, never fails);
    the first thing each does is remove the temporaries (and their WALs) of killed refreshes. A
    file replaced by a stage writer between listing and reading makes the refresh list again.
    """
    root = root_dir(data_dir)
    target = root / CATALOG_NAME
    root.mkdir(parents=True, exist_ok=True)
    (root / LOCK_NAME).open(
        "a"
    ).close()  # made by the writer: a query leaves the data directory as it was
    with paths.file_lock(root / WRITER_LOCK_NAME):
        paths.sweep_stale_temps(root)
        for attempt in range(RELIST_TRIES):
            try:
                _refresh(root, target, full)
                return target
            except _Relist as exc:
                if attempt == RELIST_TRIES - 1:
                    raise CatalogQueryError(
                        f"cannot build the catalog for {root}: {exc.args[0]} was replaced while "
                        f"being read, {RELIST_TRIES} times in a row; refresh again when the "
                        "stage writing it has finished"
                    ) from exc
    return target
