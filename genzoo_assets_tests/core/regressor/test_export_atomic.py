"""The export is atomic as a whole (old or new, never a mix) and incremental (unchanged shards reused)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from genzoo_assets.core.dataset import splits, webdataset
from genzoo_assets.core.dataset.reader import shard_urls
from genzoo_assets.core.regressor.data import CachedSplit, load_split, materialize
from genzoo_assets_tests.core.regressor.synthetic import make_samples

STAGES = [
    "_write_shard",
    "_link_shard",
    "_write_metadata",
    "_publish",
    "_swap_current",
    "_collect_garbage",
]


class Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def samples(body_model, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("atomic_data")
    return data_dir, make_samples(body_model, data_dir, n=20)


def _export(samples, out_dir, rows=None, **kwargs):
    data_dir, df = samples
    return webdataset.export_shards(
        df if rows is None else rows,
        data_dir,
        out_dir,
        heldout_families=(),
        val_fraction=0.25,
        maxcount=2,
        camera_version="v1",
        **kwargs,
    )


def assert_complete(out_dir, sample_ids) -> str:
    """The current export lists exactly ``sample_ids``, every listed shard exists, and the trainer's readers read it."""
    manifest = webdataset.read_manifest(out_dir)
    seen = set()
    for split in splits.SPLITS:
        urls = shard_urls(out_dir, split)
        if split == "val":
            seen |= {
                ex["sample_id"] for ex in materialize(load_split(out_dir, split, input_hw=(32, 24)))
            }
        elif urls:
            seen |= {
                item[1]["sample_id"].item()
                for item in CachedSplit(out_dir, split, input_hw=(32, 24)).items
            }
    assert seen == set(sample_ids)
    assert sum(manifest["counts"].values()) == len(sample_ids)
    return manifest["export"]


def test_incremental_export_reuses_unchanged_shards(samples, tmp_path):
    data_dir, df = samples
    out = tmp_path / "shards"
    first_rows = df[df["species"] != "sp_d"]
    first = _export(samples, out, first_rows)
    assert first["reused"] == 0 and first["written"] == len(first["shards"])
    second = _export(samples, out)  # sp_d added: only its shards are new
    sp_d = df.loc[df["species"] == "sp_d", "sample_id"].tolist()
    new_shards = [p for p, ids in second["shards"] if set(ids) & set(sp_d)]
    assert second["written"] == len(new_shards) and second["reused"] == len(second["shards"]) - len(
        new_shards
    )
    old_inodes = {os.stat(p).st_ino for p, _ in first["shards"]}
    assert {
        os.stat(p).st_ino for p, ids in second["shards"] if not set(ids) & set(sp_d)
    } <= old_inodes
    changed = df.copy()
    changed.loc[0, "cam_tx"] += (
        0.01  # one sample's ground truth changes: only its shard is rewritten
    )
    third = _export(samples, out, changed)
    assert third["written"] == 1 and third["reused"] == len(third["shards"]) - 1
    assert_complete(out, df["sample_id"])
    kept = sorted(p.name for p in out.iterdir() if p.name.startswith(webdataset.EXPORT_PREFIX))
    assert len(kept) == webdataset.KEEP_LAST  # the newest three: current and the two before it
    assert {webdataset.read_manifest(out)[k] for k in ("export", "previous")} <= set(kept)


@pytest.mark.parametrize("stage", STAGES)
def test_a_crash_at_any_stage_leaves_the_old_or_the_new_export(
    samples, tmp_path, monkeypatch, stage
):
    data_dir, df = samples
    out = tmp_path / "shards"
    old_rows = df[df["species"] != "sp_d"]
    old = _export(samples, out, old_rows)
    changed = df.copy()
    changed.loc[0, "cam_tx"] += 0.01  # a rewritten shard, reused shards and a new species' shards
    original = getattr(webdataset, stage)
    calls = {"n": 0}
    crash_at = (
        2 if stage == "_collect_garbage" else 1
    )  # its first call is the clean-up before writing

    def crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise Crash(stage)
        return original(*args, **kwargs)

    monkeypatch.setattr(webdataset, stage, crash)
    with pytest.raises(Crash):
        _export(samples, out, changed)
    monkeypatch.setattr(webdataset, stage, original)
    swapped = stage == "_collect_garbage"  # the only stage after the pointer swap
    current = assert_complete(out, df["sample_id"] if swapped else old_rows["sample_id"])
    assert (current != old["export_dir"].rsplit("/", 1)[-1]) == swapped
    again = _export(samples, out, changed)  # the next run removes the dead run's leftovers
    assert_complete(out, df["sample_id"])
    leftovers = [
        p.name
        for p in out.iterdir()
        if p.name.startswith((webdataset.TEMP_PREFIX, webdataset.LINK_PREFIX))
    ]
    assert leftovers == [] and again["written"] + again["reused"] == len(again["shards"])


SLOW_EXPORT = textwrap.dedent("""
    import sys, time
    import pandas as pd
    from genzoo_assets.core.dataset import webdataset
    original = webdataset._write_shard
    def slow(path, part, *args):
        original(path, part, *args)
        print("wrote", path.name, flush=True)
        time.sleep(60)
    webdataset._write_shard = slow
    webdataset.export_shards(pd.read_pickle(sys.argv[1]), sys.argv[2], sys.argv[3], heldout_families=(),
                         val_fraction=0.25, maxcount=2, camera_version="v1")
""")


@pytest.mark.slow
def test_kill_9_mid_export_keeps_the_previous_export_and_the_next_run_cleans_up(samples, tmp_path):
    data_dir, df = samples
    out = tmp_path / "shards"
    old_rows = df[df["species"] != "sp_d"]
    old = _export(samples, out, old_rows)
    changed = df.copy()
    changed.loc[0, "cam_tx"] += 0.01
    frame = tmp_path / "samples.pkl"
    changed.to_pickle(frame)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_EXPORT, str(frame), str(data_dir), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().startswith("wrote"), (
            "the export subprocess did not start writing"
        )
        assert [p for p in out.iterdir() if p.name.startswith(webdataset.TEMP_PREFIX)]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert webdataset.read_manifest(out)["export"] == old["export_dir"].rsplit("/", 1)[-1]
    assert_complete(out, old_rows["sample_id"])
    t0 = time.monotonic()
    _export(samples, out, changed)  # the lock died with the killed run: no wait
    assert time.monotonic() - t0 < 60
    assert_complete(out, df["sample_id"])
    assert not [p for p in out.iterdir() if p.name.startswith(webdataset.TEMP_PREFIX)]


def test_a_leased_old_export_survives_garbage_collection(samples, tmp_path):
    out = tmp_path / "shards"
    first = _export(samples, out)
    lease = webdataset.ExportLease(first["export_dir"])
    for _ in range(webdataset.KEEP_LAST):
        _export(samples, out)  # `first` is no longer among the newest three, but a reader holds it
    assert os.path.isdir(first["export_dir"])
    lease.close()
    _export(samples, out)
    assert not os.path.isdir(first["export_dir"])


def test_readers_refuse_an_export_in_the_old_layout(samples, tmp_path):
    out = tmp_path / "shards"
    out.mkdir()
    (out / webdataset.MANIFEST).write_text('{"counts": {}, "shards": {}}')
    with pytest.raises(ValueError, match="older genzoo-assets"):
        shard_urls(out, "train")
    _export(samples, out)  # the new export replaces the old layout's files
    assert (
        not (out / webdataset.MANIFEST).exists()
        and webdataset.read_manifest(out)["format"] == webdataset.FORMAT
    )
