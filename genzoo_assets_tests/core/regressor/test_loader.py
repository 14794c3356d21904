"""Training data in DataLoader workers: the default worker count, one sight of each sample per
epoch, and augmentation draws that do not depend on the number of workers."""

import pytest
import torch

from genzoo_assets.core.dataset.reader import shard_urls
from genzoo_assets.core.regressor import loader
from genzoo_assets.core.regressor.data import Augmentation, CachedSplit, load_split
from genzoo_assets.core.regressor.loader import (
    MAX_DEFAULT_WORKERS,
    default_num_workers,
    make_loader,
    resolve_num_workers,
)

HW = (64, 48)


@pytest.mark.parametrize(("cpus", "expected"), [(1, 0), (2, 1), (5, 4), (200, MAX_DEFAULT_WORKERS)])
def test_the_default_is_the_granted_cpus_minus_one_capped(monkeypatch, cpus, expected):
    monkeypatch.setattr(loader.os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert default_num_workers() == expected
    assert resolve_num_workers(None) == resolve_num_workers(-1) == expected
    assert resolve_num_workers(3) == 3


def test_a_worker_count_below_minus_one_is_refused():
    with pytest.raises(ValueError, match=r"num_workers = -2: must be >= 0, or -1"):
        resolve_num_workers(-2)


def _ids(batches) -> list[str]:
    return [sid for batch in batches for sid in batch["sample_id"]]


def test_streaming_workers_split_the_shards_and_see_each_sample_once(catalog):
    split = load_split(catalog["out_dir"], "train", input_hw=HW)
    assert len(shard_urls(catalog["out_dir"], "train")) >= 2, "the fixture needs several shards"
    alone = _ids(make_loader(split, 4, True, 0, seed=0))
    workers = _ids(make_loader(split, 4, True, 2, seed=0))
    assert len(workers) == len(set(workers)) == len(alone)
    assert sorted(workers) == sorted(alone)


def _crops(split, num_workers: int, epoch: int) -> dict[str, torch.Tensor]:
    split.set_epoch(epoch)
    out = {}
    for batch in make_loader(split, 4, False, num_workers, seed=0):
        out.update(zip(batch["sample_id"], batch["img"]))
    return out


@pytest.mark.slow  # worker processes, three passes over the split
@pytest.mark.parametrize("kind", ["cached", "streaming"])
def test_augmentation_is_the_same_with_or_without_workers_and_differs_by_epoch(catalog, kind):
    augment = Augmentation(colour=0.3)
    if kind == "cached":
        split = CachedSplit(catalog["out_dir"], "train", input_hw=HW, augment=augment, seed=1)
    else:
        split = load_split(catalog["out_dir"], "train", input_hw=HW, augment=augment, seed=1)
    alone, workers = _crops(split, 0, epoch=1), _crops(split, 2, epoch=1)
    assert alone.keys() == workers.keys()
    assert all(torch.equal(alone[k], workers[k]) for k in alone)
    other_epoch = _crops(split, 0, epoch=2)
    assert not any(torch.equal(alone[k], other_epoch[k]) for k in alone)
