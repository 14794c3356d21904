"""The validation split as the trainer holds it: bounded in size and stored as uint8 crops.

Validation runs every ``val_every`` steps over the same examples, so they are decoded once and kept
in memory. Held whole and as float32 crops that cost 590 kB a sample at ViT-H's 256×192 input
(~59 GB and ~70 minutes of single-core JPEG decoding for the 100 k val samples of a 1 M export).
Here at most ``max_samples`` are kept, the same ones every run (the smallest
``derive_seed(seed, "val", sample_id)``: a hash of the id, so the choice does not depend on shard
order or on the other samples' ids), each as its uint8 (H, W, 3) crop plus labels (~150 kB at
256×192); only the shards that hold them are read, only those samples are decoded, in DataLoader
workers, and ``__getitem__`` normalises the crop as ``data.make_example`` does.
"""

from __future__ import annotations

import pandas as pd
import torch
import webdataset as wds
from torch.utils.data import DataLoader

from genzoo_assets.core.dataset.reader import decode_shards
from genzoo_assets.core.dataset.records import wds_key
from genzoo_assets.core.dataset.webdataset import INDEX, ExportLease, read_manifest
from genzoo_assets.core.regressor.crop import BBOX_PADDING, INPUT_HW, normalize_image
from genzoo_assets.core.regressor.data import make_example
from genzoo_assets.core.seeds import derive_seed


def choose_samples(sample_ids, max_samples: int, seed: int = 0) -> list[str]:
    """At most ``max_samples`` of ``sample_ids``, the same for the same ids and seed, in id order."""
    if max_samples < 1:
        raise ValueError(f"max_samples = {max_samples!r}: must be >= 1")
    ids = sorted({str(s) for s in sample_ids})
    if len(ids) <= max_samples:
        return ids
    ranked = sorted(ids, key=lambda s: derive_seed(seed, "val", s))
    return sorted(ranked[:max_samples])


class ValidationSplit(torch.utils.data.Dataset):
    """At most ``max_samples`` examples of ``split``, decoded once, crops kept as uint8."""

    def __init__(
        self,
        out_dir,
        split: str = "val",
        max_samples: int = 4096,
        input_hw=INPUT_HW,
        seed: int = 0,
        padding: float = BBOX_PADDING,
        num_workers: int = 0,
    ):
        lease = ExportLease(read_manifest(out_dir)["export_dir"])
        try:
            index = pd.read_parquet(lease.export_dir / INDEX)
            index = index[index["split"] == split]
            chosen = choose_samples(index["sample_id"], max_samples, seed)
            keys = {wds_key(s) for s in chosen}
            shards = sorted(set(index.loc[index["sample_id"].isin(chosen), "shard"]))
            self.examples = _decode(
                [str(lease.export_dir / name) for name in shards],
                keys,
                tuple(input_hw),
                padding,
                num_workers,
            )
        finally:
            lease.close()
        self.examples.sort(key=lambda e: e["sample_id"])
        self.total = int(len(index))  # the split's size before the bound

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        example = self.examples[i]
        return {**example, "img": torch.from_numpy(normalize_image(example["img"].numpy()))}


def _decode(urls: list[str], keys: set[str], input_hw, padding: float, num_workers: int):
    """The examples of ``keys`` in ``urls``: selected before decoding, decoded in ``num_workers``
    DataLoader workers (each reads its own shards)."""
    if not urls:
        return []
    stream = wds.WebDataset(urls, shardshuffle=False, empty_check=False).select(
        lambda sample: sample["__key__"] in keys
    )
    stream = decode_shards(stream).map(
        lambda s: make_example(s["jpg"], dict(s["npz"]), input_hw, padding=padding, normalise=False)
    )
    workers = min(num_workers, len(urls))
    loader = DataLoader(stream, batch_size=None, num_workers=workers)
    return [
        {k: (v.clone() if torch.is_tensor(v) else v) for k, v in example.items()}
        for example in loader
    ]


def bytes_per_sample(dataset) -> float:
    """Mean bytes of the tensors of one example as ``dataset`` keeps it (a list of examples or a
    ValidationSplit): crops and labels, not Python's per-object overhead."""
    examples = getattr(dataset, "examples", dataset)
    if not len(examples):
        return 0.0
    total = sum(v.nbytes for e in examples for v in e.values() if torch.is_tensor(v))
    return total / len(examples)


__all__ = ["ValidationSplit", "bytes_per_sample", "choose_samples"]
