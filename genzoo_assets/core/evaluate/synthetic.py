"""The synthetic test sets: exported WebDataset shards read back as benchmark records.

The held-out split (GenZoo-Felidae style: every species of the held-out families) is the test set
that always exists; the training split gives the mean-pose baseline its statistics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import webdataset as wds

from genzoo_assets.core.dataset.reader import SHARD_MEMBERS, decode_shards, shard_urls
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.evaluate.benchmark_set import BenchmarkSet, benchmark_set_from_samples

NPZ_FIELDS = (
    "poses",
    "betas",
    "keypoints_2d",
    "bbox",
    "mask_area",
    "species",
    "family",
    "sample_id",
)


def shard_records(shards_dir: str | Path, split: str, with_images: bool = True) -> list[dict]:
    """Every sample of ``split`` as a dict of its npz arrays (+ ``image`` H×W×3 uint8)."""
    urls = shard_urls(shards_dir, split)
    if not urls:
        raise InputError(
            f"split {split!r} of {shards_dir} has no shards: export samples of that split first"
        )
    dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    dataset = decode_shards(dataset, SHARD_MEMBERS if with_images else ("npz",))
    records = []
    for sample in dataset:
        npz = dict(sample["npz"])
        record = {
            k: (npz[k].item() if npz[k].ndim == 0 else npz[k]) for k in NPZ_FIELDS if k in npz
        }
        if with_images:
            record["image"] = sample["jpg"]
        records.append(record)
    return records


def heldout_benchmark_set(shards_dir: str | Path, split: str = "heldout") -> BenchmarkSet:
    return benchmark_set_from_samples(shard_records(shards_dir, split), name=split)


def training_pose_statistics(
    shards_dir: str | Path, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """(rotation matrices (N,35,3,3), betas (N,B)) of a split, for the mean-pose baseline."""
    records = shard_records(shards_dir, split, with_images=False)
    poses = np.stack([np.asarray(r["poses"], dtype=np.float64).reshape(35, 3, 3) for r in records])
    betas = np.stack([np.asarray(r["betas"], dtype=np.float64).ravel() for r in records])
    return poses, betas
