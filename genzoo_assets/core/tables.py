"""Parquet tables written atomically, with list columns typed the way the catalog expects.

pandas would infer ``list<double>`` (or fail on mixed numpy arrays); the contract is
``list<float32>`` for numeric lists and ``list<bool>`` for visibility flags, so downstream readers
(DuckDB, the WebDataset exporter, the regressor) see one schema across every partition file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from genzoo_assets.core.errors import InputError, MissingInputError
from genzoo_assets.core.paths import atomic_path


class TableWriteError(ValueError):
    """A DataFrame cannot be written as a catalog table (unsupported or ragged column)."""


def _first_value(series: pd.Series):
    for v in series:
        if v is not None and not (isinstance(v, float) and np.isnan(v)):
            return v
    return None


def _list_array(name: str, series: pd.Series, path: Path) -> pa.Array:
    first = np.asarray(_first_value(series))
    value_type = pa.bool_() if first.dtype == np.bool_ else pa.float32()
    if first.dtype.kind not in "biuf":
        raise TableWriteError(
            f"{path}: list column {name!r} holds {first.dtype} values (expected numbers/bools)"
        )
    np_type = np.bool_ if value_type == pa.bool_() else np.float32
    try:  # fast path: every row the same length, no nulls (the usual per-sample parameter vector)
        block = np.asarray(list(series))
    except ValueError:
        block = None
    if block is not None and block.ndim >= 2 and block.dtype.kind in "biuf":
        flat = block.reshape(len(block), -1)
        offsets = np.arange(len(flat) + 1, dtype=np.int32) * flat.shape[1]
        return pa.ListArray.from_arrays(
            pa.array(offsets), pa.array(flat.reshape(-1).astype(np_type))
        )
    values = []
    for i, v in enumerate(series):
        if v is None:
            values.append(None)
            continue
        arr = np.asarray(v)
        if arr.dtype.kind not in "biuf":
            raise TableWriteError(f"{path}: column {name!r} row {i} holds {arr.dtype} values")
        values.append(arr.reshape(-1).astype(np_type))
    return pa.array(values, type=pa.list_(value_type))


def to_arrow(df: pd.DataFrame, path: Path | str = "<table>") -> pa.Table:
    """Arrow table of ``df`` with list-like object columns cast to list<float32>/list<bool>."""
    path = Path(path)
    arrays, names = [], []
    for name, series in df.items():
        first = _first_value(series) if series.dtype == object else None
        if isinstance(first, (list, tuple, np.ndarray)):
            arrays.append(_list_array(str(name), series, path))
        else:
            try:
                arrays.append(pa.Array.from_pandas(series))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise TableWriteError(
                    f"{path}: column {name!r} cannot be stored in Parquet: {exc}"
                ) from exc
        names.append(str(name))
    return pa.Table.from_arrays(arrays, names=names)


def write_table_atomic(df: pd.DataFrame | pa.Table, path: str | os.PathLike) -> Path:
    """Write ``df`` to ``path`` as Parquet via a temporary dot-file renamed into place."""
    path = Path(path)
    table = df if isinstance(df, pa.Table) else to_arrow(df, path)
    # Dictionary-encode only text/flag columns: random floats gain nothing and cost write time.
    # LZ4: half zstd's CPU per partition; sampled floats barely compress either way. Statistics
    # (for row-group pruning) only on flat columns: min/max of list elements prune nothing useful.
    dictionary = [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_boolean(f.type)
    ]
    flat = [f.name for f in table.schema if not pa.types.is_nested(f.type)]
    with atomic_path(path) as tmp:
        pq.write_table(
            table, tmp, compression="lz4", use_dictionary=dictionary, write_statistics=flat
        )
    return path


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read one Parquet table; list columns come back as numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"Parquet table {path} does not exist")
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path} is not a readable Parquet file: {exc}") from exc
