"""Reading and writing the per-partition Parquet files that assets exchange (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import base64
from pathlib import Path

import dagster as dg
import pandas as pd

from genzoo_assets.core.catalog.parquet import read_table, write_table_atomic


class MissingUpstreamError(FileNotFoundError):
    """An upstream partition has not been materialised yet."""


def partition_file(root: Path, asset: str, species: str, shard: str) -> Path:
    return root / asset / species / f"{shard}.parquet"


def read_partition(root: Path, asset: str, species: str, shard: str) -> pd.DataFrame:
    path = partition_file(root, asset, species, shard)
    if not path.exists():
        raise MissingUpstreamError(
            f"upstream asset {asset!r} has no partition species={species} shard={shard} "
            f"(expected {path}); materialise it first"
        )
    return read_table(path)


def read_merged(root: Path, assets: list[str], species: str, shard: str) -> pd.DataFrame:
    """Upstream partitions joined on sample_id, keeping the first table's copy of shared columns."""
    merged = read_partition(root, assets[0], species, shard)
    for asset in assets[1:]:
        other = read_partition(root, asset, species, shard)
        keep = [c for c in other.columns if c == "sample_id" or c not in merged.columns]
        merged = merged.merge(other[keep], on="sample_id", how="inner", validate="one_to_one")
    return merged


def write_partition(root: Path, asset: str, species: str, shard: str, df: pd.DataFrame) -> Path:
    path = partition_file(root, asset, species, shard)
    write_table_atomic(df, path)
    return path


def image_markdown(png_path: Path, alt: str = "preview") -> dg.MetadataValue:
    """An inline image for the asset's metadata panel in the web UI."""
    data = base64.b64encode(Path(png_path).read_bytes()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


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
