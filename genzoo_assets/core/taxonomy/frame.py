"""The species table on disk: which frame it is built from, and the species users added.

Files under ``<data dir>/species/``:

- ``species.parquet`` — the table every stage reads (columns of :data:`table.TABLE_COLUMNS`),
  written only by :func:`refresh_species_table` (the ``species`` asset);
- ``frame.parquet`` — the non-dog frame imported with ``genzoo species import-mdd`` (absent: the
  bundled species list);
- ``added.parquet`` — species requested with ``genzoo species add``, append-only; they survive
  re-imports and rebuilds, and each re-spreads its group's share of the dataset (see
  :func:`table.add_species`).

``frame.parquet`` and ``added.parquet`` are the table's inputs: the commands write them, the asset
reads them. Every read-modify-write of them, and the asset's read-inputs-then-write-table, holds
``.species.lock`` (:func:`species_lock`), so two concurrent ``add`` commands both land and a table
written while a request arrives is rewritten by the request's own materialisation.

Names given to ``add`` resolve against the table, the bundled species and dog breeds, the imported
release, and a bundled extract of the Mammal Diversity Database v1.2 (6,382 extant mammals, MIT
licence), so any mammal can be added offline by scientific or common name.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pandas as pd

from genzoo_assets.core import layout
from genzoo_assets.core.errors import MissingInputError
from genzoo_assets.core.paths import file_lock
from genzoo_assets.core.tables import read_table, write_table_atomic
from genzoo_assets.core.taxonomy.mdd import filter_mdd, load_mdd
from genzoo_assets.core.taxonomy.table import (
    DOG_PREFIX,
    InvalidSpeciesError,
    UnknownSpeciesError,
    add_species,
    build_species_table,
    resolve_species,
    validate_partition_key,
)

ADDED_COLUMNS = ("scientific_name", "common_name", "order", "family", "is_dog", "source")


def species_table_path(root: Path) -> Path:
    return layout.species_table(root)


@contextlib.contextmanager
def species_lock(root: Path) -> Iterator[None]:
    """Exclusive ``flock`` on ``species/.species.lock`` (blocks until free; released on exit or death)."""
    with file_lock(layout.species_lock(root)):
        yield


def read_species_table(root: Path) -> pd.DataFrame:
    path = species_table_path(root)
    if not path.exists():
        raise MissingInputError(
            f"no species table at {path}: materialise the `species` asset first"
        )
    return read_table(path)


def _frame(root: Path) -> pd.DataFrame | None:
    path = layout.species_frame(root)
    return read_table(path) if path.exists() else None


def _added(root: Path) -> pd.DataFrame:
    path = layout.species_added(root)
    return read_table(path) if path.exists() else pd.DataFrame(columns=list(ADDED_COLUMNS))


def build_table(
    root: Path,
    dog_fraction=0.5,
    dataset_size=1_000_000,
    samples_per_shard=64,
    frame: pd.DataFrame | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """The species table from the imported frame (``frame``, read from ``frame.parquet`` when
    None), the dog breeds and ``added.parquet``. A row that cannot enter the table is one
    ``InvalidSpeciesError`` naming its file (``source``: where a given ``frame`` came from)."""
    frame_file = layout.species_frame(root)
    if frame is None:
        frame, source = _frame(root), str(frame_file)
    try:
        table = build_species_table(
            frame,
            dog_fraction=dog_fraction,
            dataset_size=dataset_size,
            samples_per_shard=samples_per_shard,
        )
    except InvalidSpeciesError as exc:
        raise InvalidSpeciesError(f"{source}: {exc}") from exc
    try:
        for row in _added(root).to_dict("records"):
            table = add_species(table, row, samples_per_shard=samples_per_shard)
    except InvalidSpeciesError as exc:
        raise InvalidSpeciesError(f"{layout.species_added(root)}: {exc}") from exc
    return table


def refresh_species_table(
    root: Path,
    dog_fraction=0.5,
    dataset_size=1_000_000,
    samples_per_shard=64,
    before_write: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """Rebuild ``species.parquet`` from the frame, the dog breeds and the added species.

    ``before_write(table)`` runs under the same lock, before the file is replaced (the asset
    registers the partitions there, so nothing reads a species that is not a partition yet).
    """
    with species_lock(root):
        table = build_table(root, dog_fraction, dataset_size, samples_per_shard)
        if before_write is not None:
            before_write(table)
        write_table_atomic(table, species_table_path(root))
    return table


def species_row(root: Path, key: str) -> dict:
    """The species table's row for a partition key; a clear error for unknown or malformed keys."""
    validate_partition_key(key)
    table = read_species_table(root)
    hit = table[table["key"] == key]
    if hit.empty:
        import difflib

        close = difflib.get_close_matches(key, table["key"].tolist(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownSpeciesError(
            f"species {key!r} is not in the species table {species_table_path(root)}{hint}"
        )
    return {
        **hit.iloc[0].to_dict(),
        "species": key,
        "breed": hit.iloc[0]["common_name"] if hit.iloc[0]["is_dog"] else None,
    }


@functools.lru_cache(maxsize=1)
def bundled_mammals() -> pd.DataFrame:
    with resources.as_file(
        resources.files(__package__) / "data" / "mdd_v1.2_mammals.csv.gz"
    ) as path:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return df.assign(source="mdd-v1.2-bundled")


def name_sources(root: Path) -> pd.DataFrame:
    """Every species a name can resolve to, current table first (so its keys win)."""
    parts = []
    if species_table_path(root).exists():
        parts.append(read_species_table(root))
    try:
        parts.append(build_species_table(_frame(root), dataset_size=0))
    except InvalidSpeciesError as exc:
        raise InvalidSpeciesError(f"{layout.species_frame(root)}: {exc}") from exc
    parts.append(bundled_mammals().assign(is_dog=False))
    return pd.concat(parts, ignore_index=True)


def add_species_by_name(
    root: Path, name: str, dog_fraction=0.5, dataset_size=1_000_000, samples_per_shard=64
) -> tuple[dict, bool]:
    """Resolve ``name`` and append it to ``added.parquet``; returns (its row in the table the
    ``species`` asset will build, newly_added). ``species.parquet`` is left to the asset.

    A name that matches no species and no dog breed raises :class:`UnknownSpeciesError` with
    suggestions; nothing is written then.
    """
    found = resolve_species(name, name_sources(root))
    is_dog = bool(found.get("is_dog", False)) or str(found.get("key", "")).startswith(DOG_PREFIX)
    row = {
        "scientific_name": found["scientific_name"],
        "common_name": found.get("common_name", ""),
        "order": found.get("order", ""),
        "family": found.get("family", ""),
        "is_dog": is_dog,
        "source": "user",
    }
    with species_lock(root):
        table = build_table(root, dog_fraction, dataset_size, samples_per_shard)
        updated = add_species(table, row, samples_per_shard=samples_per_shard)
        newly = len(updated) > len(table)
        if newly:
            added = pd.concat([_added(root), pd.DataFrame([row])], ignore_index=True)
            write_table_atomic(added.astype({"is_dog": bool}), layout.species_added(root))
    match = updated[
        (updated["scientific_name"] == row["scientific_name"]) & (updated["is_dog"] == is_dog)
    ]
    if is_dog:
        match = updated[updated["common_name"].str.casefold() == str(row["common_name"]).casefold()]
    return match.iloc[0].to_dict(), newly


def import_mdd(
    root: Path, path: str, dog_fraction=0.5, dataset_size=1_000_000, samples_per_shard=64
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Make a filtered MDD release the non-dog frame; returns (the table the ``species`` asset will
    build, counts by order). ``species.parquet`` is left to the asset."""
    frame = filter_mdd(load_mdd(path))
    if frame.empty:
        raise UnknownSpeciesError(
            f"{path}: no species left after the default filter (Laurasiatheria, "
            f"no Eulipotyphla, no extinct, no bats/cetaceans/pinnipeds)"
        )
    with species_lock(root):  # validate, then write: a refused import leaves every file as it was
        table = build_table(
            root, dog_fraction, dataset_size, samples_per_shard, frame=frame, source=str(path)
        )
        write_table_atomic(frame, layout.species_frame(root))
    counts = (
        frame.groupby("order")
        .size()
        .rename("species")
        .reset_index()
        .sort_values("species", ascending=False)
    )
    return table, counts
