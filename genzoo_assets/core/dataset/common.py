"""What every interchange export shares: the catalog's samples, their splits, a fresh output folder."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from genzoo_assets.core.dataset.splits import DEFAULT_HELDOUT_FAMILIES, assign_splits
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.paths import atomic_dir, check_file_name, stored_path

ExportProgress = Callable[[int, int, int, int], None]
"""``progress(samples_written, samples_total, shards_written, shards_total)``, called by an export
after each sample it wrote; ``shards_total`` is 0 for a layout without shards (Animal3D's)."""
SAMPLES_SQL = "SELECT * FROM samples ORDER BY sample_id"
FILE_COLUMNS = ("image_path", "mask_path")  # the stored paths an export reads


def check_rows(samples: pd.DataFrame, data_dir, columns=FILE_COLUMNS) -> None:
    """Refuse, before anything is written, a sample whose id cannot name a file or whose stored
    ``columns`` leave the data directory (``paths.PathEscapeError``, one line naming the sample,
    the column and the path). Missing values (a stage not run) are left to the caller."""
    present = [c for c in columns if c in samples.columns]
    for row in samples[["sample_id", *present]].itertuples(index=False):
        check_file_name(row[0], row[0], "column sample_id")
        for column, value in zip(present, row[1:]):
            if isinstance(value, str):
                stored_path(data_dir, value, row[0], column)


def as_body_model(body_model):
    """A ``BodyModel`` as given, or resolved from a spec (``"procedural"`` or a model file path)."""
    if isinstance(body_model, (str, os.PathLike)):
        from genzoo_assets.core.body.info import resolve_body_model

        return resolve_body_model(str(body_model))
    return body_model


def catalog_samples(
    data_dir,
    samples: pd.DataFrame | None = None,
    exclude_flagged: bool = True,
    heldout_families=DEFAULT_HELDOUT_FAMILIES,
    val_fraction: float = 0.1,
) -> pd.DataFrame:
    """The catalog's samples with images (or ``samples``), flagged ones dropped, with a ``split`` column.

    The splits are the WebDataset export's (``assign_splits``, same defaults), so a model trained on
    one export and tested on another never sees a test species.
    """
    if samples is None:
        from genzoo_assets.core.catalog import query

        samples = query.query(SAMPLES_SQL, data_dir=data_dir)
    if "image_path" in samples.columns:  # the view has the column once an `images` partition exists
        samples = samples[samples["image_path"].notna()]
    if samples.empty or "image_path" not in samples.columns:
        raise InputError(
            f"the catalog of {data_dir} has no samples with images: materialise `images` and `catalog` first"
        )
    if exclude_flagged and "flagged" in samples.columns:
        samples = samples[~samples["flagged"].fillna(False).astype(bool)]
    samples = samples.sort_values("sample_id", kind="stable").reset_index(drop=True)
    check_rows(samples, data_dir)
    return samples.assign(split=assign_splits(samples, heldout_families, val_fraction).values)


@contextlib.contextmanager
def fresh_output(out_dir) -> Iterator[Path]:
    """A temporary sibling folder that becomes ``out_dir`` (by one rename) only if the block succeeds.

    ``out_dir`` must not exist or be empty: an export never overwrites or mixes with earlier files.
    """
    out_dir = Path(out_dir).expanduser().absolute()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(
            f"output folder {out_dir} already exists and is not empty: choose a new folder"
        )
    with atomic_dir(out_dir) as tmp:
        yield tmp
