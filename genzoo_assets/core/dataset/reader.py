"""Read an export's shards back: the files of a split, and their members decoded safely.

Shared by training (:mod:`genzoo_assets.core.regressor.data`) and the evaluator.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import webdataset as wds

from genzoo_assets.core.dataset.splits import SPLITS
from genzoo_assets.core.dataset.webdataset import read_manifest
from genzoo_assets.core.errors import InputError, MissingInputError


def shard_urls(out_dir, split: str) -> list[str]:
    """The shard files of ``split`` in the export ``out_dir`` names (its ``current`` one, or itself)."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, got {split!r}")
    manifest = read_manifest(out_dir)
    urls = [str(Path(manifest["export_dir"]) / n) for n in manifest["shards"].get(split, [])]
    missing = [u for u in urls if not Path(u).is_file()]
    if missing:
        raise MissingInputError(
            f"split {split!r} of {out_dir}: shards {missing} listed in the manifest are missing"
        )
    return urls


SHARD_MEMBERS = ("jpg", "npz")  # what the export writes per sample (besides __key__)


def _npz(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def decode_shards(
    dataset: wds.WebDataset, members: tuple[str, ...] = SHARD_MEMBERS
) -> wds.WebDataset:
    """Decode only ``members`` of the export, images as RGB uint8 and npz without pickles. Any
    other member of a (planted) shard stays bytes: webdataset's default handlers would unpickle
    ``.pyd`` / ``.pkl`` members and ``torch.load`` ``.pth`` ones."""
    return dataset.decode(
        wds.handle_extension("npz", _npz), wds.imagehandler("rgb8"), only=members, post=[]
    )
