"""Reading and writing the per-partition Parquet files that assets exchange (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
from PIL import Image

from genzoo_assets.core import layout
from genzoo_assets.core.checks import CheckOutcome, backend_counts, require_same_sample_ids
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.tables import read_table, write_table_atomic


class MissingUpstreamError(InputError, FileNotFoundError):
    """An upstream partition has not been materialised yet."""


def partition_file(root: Path, asset: str, species: str, shard: str) -> Path:
    return layout.partition_table(root, asset, species, shard)


def read_partition(root: Path, asset: str, species: str, shard: str) -> pd.DataFrame:
    path = partition_file(root, asset, species, shard)
    if not path.exists():
        raise MissingUpstreamError(
            f"upstream asset {asset!r} has no partition species={species} shard={shard} "
            f"(expected {path}); materialise it first"
        )
    return read_table(path)


def read_merged(root: Path, assets: list[str], species: str, shard: str) -> pd.DataFrame:
    """Upstream partitions joined on sample_id, keeping the first table's copy of shared columns.

    The tables must hold the same sample ids (``SampleIdMismatchError`` names the table that lacks
    some, and which): a join would silently drop them.
    """
    tables = {asset: read_partition(root, asset, species, shard) for asset in assets}
    require_same_sample_ids(
        {a: t["sample_id"] for a, t in tables.items()}, f"species={species} shard={shard}"
    )
    merged = tables[assets[0]]
    for asset in assets[1:]:
        other = tables[asset]
        keep = [c for c in other.columns if c == "sample_id" or c not in merged.columns]
        merged = merged.merge(other[keep], on="sample_id", how="left", validate="one_to_one")
    return merged


def write_partition(root: Path, asset: str, species: str, shard: str, df: pd.DataFrame) -> Path:
    path = partition_file(root, asset, species, shard)
    write_table_atomic(df, path)
    return path


def progress_log(
    context: dg.AssetExecutionContext, what: str, every: int = 16, seconds: float = 10.0
) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that logs "{what} done/total" every ``every`` items,
    after ``seconds`` without a line (a slow generator still reports each image) and at the end.

    Each line is a row in the run's event log: one per item would cost more than a cheap item.
    """
    last = time.monotonic()

    def progress(done: int, total: int) -> None:
        nonlocal last
        if done == total or done % every == 0 or time.monotonic() - last >= seconds:
            context.log.info(f"{what} {done}/{total}")
            last = time.monotonic()

    return progress


def check_result(name: str, outcome: CheckOutcome, **kwargs) -> dg.AssetCheckResult:
    """A core check's outcome as this asset's check result (lists and dicts shown as JSON)."""
    metadata = {
        k: dg.MetadataValue.json(v) if isinstance(v, (list, dict)) else v
        for k, v in outcome.metadata.items()
    }
    return dg.AssetCheckResult(
        check_name=name, passed=bool(outcome.passed), metadata=metadata, **kwargs
    )


def backend_metadata(backends) -> dict:
    """``backend``: the backends that actually made the samples (most frequent first), and
    ``backends``: samples per backend, so a per-sample fallback shows instead of the one asked for."""
    counts = backend_counts(backends)
    return {"backend": ", ".join(counts), "backends": dg.MetadataValue.json(counts)}


THUMBNAIL_PX = 256  # longest side of an inline preview: one per partition lands in the event log


def image_markdown(path: Path, alt: str = "preview") -> dg.MetadataValue:
    """A small inline JPEG thumbnail (≤ ``THUMBNAIL_PX``) of an image for the web UI's metadata
    panel, followed by the full-size file's path."""
    with Image.open(path) as im:
        thumb = im.convert("RGB")
        thumb.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    data = base64.b64encode(buf.getvalue()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/jpeg;base64,{data})\n\nfull size: `{path}`")


def frame_markdown(df: pd.DataFrame, max_rows: int = 20) -> dg.MetadataValue:
    """A small Markdown table (no tabulate dependency)."""
    head = df.head(max_rows)
    cols = [str(c) for c in head.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    if len(df) > max_rows:
        lines.append(f"\n… {len(df) - max_rows} more rows")
    return dg.MetadataValue.md("\n".join(lines))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")
