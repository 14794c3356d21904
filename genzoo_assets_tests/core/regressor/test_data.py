"""The shard readers (training, benchmark) decode only the export's members: a planted shard cannot run code."""

import pickle
import shutil
from pathlib import Path

import torch
import webdataset as wds

from genzoo_assets.core.dataset.webdataset import read_manifest
from genzoo_assets.core.evaluate.synthetic import shard_records
from genzoo_assets.core.regressor.data import CachedSplit, load_split
from genzoo_assets_tests.fixtures.malicious import Exec


def test_planted_pickle_and_torch_members_stay_bytes(catalog, tmp_path):
    out = tmp_path / "shards"
    shutil.copytree(
        catalog["out_dir"], out, symlinks=True
    )  # `current` stays a pointer into the copy
    marker = tmp_path / "touched"
    manifest = read_manifest(out)
    shard = Path(manifest["export_dir"]) / manifest["shards"]["train"][0]
    samples = list(wds.WebDataset(str(shard), shardshuffle=False, empty_check=False))
    payload = pickle.dumps(Exec(marker))
    pickle.loads(payload)  # the payload is live
    assert marker.exists()
    marker.unlink()
    with wds.TarWriter(str(shard)) as sink:
        for s in samples:
            sink.write(
                {
                    "__key__": s["__key__"],
                    "jpg": s["jpg"],
                    "npz": s["npz"],
                    "pyd": payload,
                    "pkl": payload,
                    "pth": payload,
                }
            )
    streamed = list(load_split(out, "train", input_hw=(64, 48)))
    cached = CachedSplit(out, "train", input_hw=(64, 48))
    records = shard_records(out, "train") + shard_records(out, "train", with_images=False)
    assert not marker.exists()
    assert len(records) == 2 * len(streamed)
    assert len(cached) == len(streamed) > 0 and streamed[0]["img"].shape == (3, 64, 48)
    assert torch.equal(cached[0]["img"], streamed[0]["img"])
