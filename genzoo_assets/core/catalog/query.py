"""Read-only SQL over the catalog (and ``results.duckdb`` beside it), sandboxed.

Every query opens a new read-only handle under the catalog's shared lock (see :mod:`refresh` for why
handles are never cached) with external access off and the configuration locked.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd

from genzoo_assets.core import paths
from genzoo_assets.core.catalog.store import (
    ALIAS,
    CATALOG_NAME,
    INFO_TABLE,
    LOCK_NAME,
    QUERY_MEMORY_LIMIT,
    REFRESH_HINT,
    RESULTS_ALIAS,
    RESULTS_NAME,
    CatalogMissingError,
    CatalogQueryError,
    one_line,
    root_dir,
    sql_literal,
)


def catalog_views(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the views in the current catalog (CatalogMissingError when there is none)."""
    with _opened(root_dir(data_dir), True, with_results=False) as (_, info):
        return json.loads(info["views"])


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
            f"memory limit {memory_limit!r} is not a size such as '2GB' ({one_line(exc)})"
        ) from exc
    try:
        try:
            db.execute(f"ATTACH {sql_literal(str(path))} AS {ALIAS} (READ_ONLY)")
        except duckdb.Error as exc:
            raise CatalogQueryError(
                f"the catalog {path} cannot be opened ({one_line(exc)}): {REFRESH_HINT}"
            ) from exc
        if results is not None:
            try:
                db.execute(f"ATTACH {sql_literal(str(results))} AS {RESULTS_ALIAS} (READ_ONLY)")
            except duckdb.Error as exc:
                raise CatalogQueryError(
                    f"the results file {results} cannot be opened ({one_line(exc)}): "
                    "`genzoo catalog refresh` rebuilds it"
                ) from exc
        db.execute("SET enable_external_access = false")
        db.execute("SET lock_configuration = true")
        db.execute(f"USE {ALIAS}")
        if results is not None:  # unqualified names: the catalog first, then the results
            db.execute(f"SET search_path = '{ALIAS}.main,{RESULTS_ALIAS}.main'")
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
                    f"SELECT data_dir, refreshed_at, views FROM {INFO_TABLE}"
                ).fetchone()
            except duckdb.CatalogException:
                row = (None, None, "[]")
            except duckdb.Error as exc:  # e.g. a truncated file whose header still attaches
                raise CatalogQueryError(
                    f"the catalog {path} cannot be read ({one_line(exc)}): {REFRESH_HINT}"
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
                f"reach files, extensions or settings ({one_line(exc)})"
            ) from exc
        if isinstance(exc, (duckdb.IOException, duckdb.SerializationException)) or "Corrupt" in str(
            exc
        ):
            raise CatalogQueryError(
                f"the catalog {path} cannot be read ({one_line(exc)}): {REFRESH_HINT}"
            ) from exc
        raise CatalogQueryError(f"catalog query {sql!r} failed on {path}: {one_line(exc)}") from exc


@contextlib.contextmanager
def _executed(
    sql: str, data_dir, read_only: bool, memory_limit: str, with_results: bool = True
) -> Iterator[duckdb.DuckDBPyConnection]:
    root = root_dir(data_dir)
    with _opened(root, read_only, memory_limit, with_results) as (con, _):
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise CatalogQueryError(f"cannot parse catalog query {sql!r}: {one_line(exc)}") from exc
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
