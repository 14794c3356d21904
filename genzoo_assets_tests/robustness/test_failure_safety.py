"""Failure safety: a SIGKILLed partition leaves nothing half-visible, concurrent partitions never
hit a DuckDB lock, reruns are idempotent, and GPU steps retry transient faults only."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import dagster as dg
import numpy as np
import pytest

from genzoo_assets.core.catalog import query, refresh
from genzoo_assets.core.dataset import webdataset
from genzoo_assets.core.render import partition as render_core
from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import GPU_RETRY, GenZooSettings
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species
from genzoo_assets.defs.training import regressor

pytestmark = pytest.mark.slow  # subprocess partitions, SIGKILL and retries (10-70 s)

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[2]
LOCK_MESSAGES = ("Could not set lock", "Conflicting lock")
CONCURRENT_SPECIES = [
    "panthera-leo",
    "panthera-tigris",
    "acinonyx-jubatus",
    "canis-lupus",
    "ursus-arctos",
    "equus-quagga",
    "dog-labrador-retriever",
    "dog-beagle",
]


def _env(dagster_home: Path) -> dict:
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "PYOPENGL_PLATFORM": "egl",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
    }


def _count(sql: str, root: Path) -> int:
    return int(query.query(sql, data_dir=root).iloc[0, 0])


def _partition_rows(table: str, root: Path, species_key: str, shard: str) -> int:
    if table not in query.catalog_views(root):
        return 0
    return _count(
        f"SELECT count(*) FROM {table} WHERE species = '{species_key}' AND shard = '{shard}'", root
    )


def _partition_runner(data: Path, key: str, shard: str, samples: int, *assets: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "genzoo_assets_tests.robustness.partition_runner",
        str(data),
        key,
        shard,
        str(samples),
        "128",
        *assets,
    ]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _kill_mid_render(data: Path, home: Path, key: str, shard: str, samples: int) -> None:
    """SIGKILL a run in the middle of control_renders: some PNGs written, no Parquet."""
    renders = data / "renders" / key / shard
    cmd = _partition_runner(
        data, key, shard, samples, "species", "shape_params", "pose_params", "control_renders"
    )
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while not (renders.is_dir() and any(p.suffix == ".png" for p in renders.iterdir())):
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the render step never started"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_mid_partition_leaves_no_partial_rows_and_rerun_completes(tmp_path):
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    key, shard, samples = "panthera-leo", "000", 16
    renders = data / "renders" / key / shard
    _kill_mid_render(data, home, key, shard, samples)
    assert not (data / "control_renders" / key / f"{shard}.parquet").exists()

    # Every file visible under a non-hidden name is complete; half-written ones are dot-files.
    visible = [p for p in renders.iterdir() if not p.name.startswith(".")]
    assert any(p.suffix == ".png" for p in visible)
    for path in visible:
        if path.suffix == ".png":
            assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None, path
        elif path.suffix == ".npy":
            assert np.isfinite(np.load(path)).all(), path

    refresh.refresh_catalog(data)
    assert (
        _partition_rows("control_renders", data, key, shard) == 0
    )  # no partial rows of the killed stage
    assert (
        _partition_rows("pose_params", data, key, shard) == samples
    )  # completed stages are intact
    assert "control_renders" not in query.catalog_views(data)

    settings = GenZooSettings(data_dir=str(data), samples_per_shard=samples, resolution=128)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        result = dg.materialize(
            [shape_params, pose_params, control_renders],
            instance=instance,
            resources={"settings": settings},
            partition_key=sample_partition_key(key, shard),
        )
        assert result.success
        runs = instance.get_runs()
        assert len(runs) == 3  # species, the killed run, the rerun
    finally:
        instance.dispose()
    refresh.refresh_catalog(data)
    for table in ("shape_params", "pose_params", "control_renders"):
        assert _partition_rows(table, data, key, shard) == samples, table
    assert _count("SELECT count(*) - count(DISTINCT sample_id) FROM samples", data) == 0
    assert _count("SELECT count(*) FROM samples WHERE rgb_path IS NULL", data) == 0
    for rel in query.query(
        "SELECT rgb_path, canny_path FROM control_renders", data_dir=data
    ).stack():
        assert cv2.imread(str(data / rel), cv2.IMREAD_UNCHANGED) is not None, rel


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_sigkill_mid_step_frees_its_gpu_slot_and_the_next_run_completes(tmp_path):
    """The killed run stays STARTED holding the `gpu` slot (limit 1, the project's dagster.yaml);
    the next run frees the slot, says so, marks the dead run failed, and completes."""
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    key, shard, samples = "panthera-leo", "000", 32
    _kill_mid_render(data, home, key, shard, samples)
    renders = data / "renders" / key / shard
    leftover = (
        renders / f".x.png~{socket.gethostname()}~{_dead_pid()}~0000.tmp"
    )  # a killed writer's temp
    live = (
        renders / f".y.png~{socket.gethostname()}~{os.getpid()}~0000.tmp"
    )  # a live writer's: kept
    leftover.write_bytes(b"half")
    live.write_bytes(b"half")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        (killed,) = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        held = instance.event_log_storage.get_concurrency_info("gpu").claimed_slots
        assert [(s.run_id, s.step_key) for s in held] == [(killed.run_id, "control_renders")]
        rerun = subprocess.run(
            _partition_runner(data, key, shard, samples, "control_renders"),
            cwd=REPO,
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        out = rerun.stdout + rerun.stderr
        assert rerun.returncode == 0 and "success" in rerun.stdout, out[-3000:]
        freed = [line for line in rerun.stderr.splitlines() if line.startswith("genzoo: freed")]
        assert len(freed) == 1, out[-3000:]
        assert f"'gpu' (step control_renders) held by run {killed.run_id}" in freed[0]
        assert "worker process" in freed[0] and "is gone" in freed[0]
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("gpu").claimed_slots == []
    finally:
        instance.dispose()
    assert (data / "control_renders" / key / f"{shard}.parquet").exists()
    assert [p.name for p in renders.glob(".*.tmp")] == [
        live.name
    ]  # the rerun removed the dead writers' temps


def test_eight_concurrent_partitions_hit_no_duckdb_lock(tmp_path):
    data = tmp_path / "data"
    frame.refresh_species_table(data, samples_per_shard=2)
    cmd = [
        sys.executable,
        "-m",
        "genzoo_assets_tests.robustness.concurrent_runner",
        str(data),
        *CONCURRENT_SPECIES,
    ]
    out = subprocess.run(
        cmd, cwd=REPO, env=_env(tmp_path / "unused"), capture_output=True, text=True, timeout=300
    )
    logs = out.stdout + out.stderr
    assert out.returncode == 0, logs[-3000:]
    reports = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert sorted(r["species"] for r in reports) == sorted(CONCURRENT_SPECIES)
    lock_errors = [m for m in LOCK_MESSAGES if m in logs]
    assert lock_errors == [], logs[-3000:]
    assert [r["errors"] for r in reports if not r["success"] or r["errors"]] == []
    refresh.refresh_catalog(data)
    counts = query.query("SELECT species, count(*) AS n FROM samples GROUP BY 1", data_dir=data)
    assert dict(zip(counts["species"], counts["n"])) == {k: 2 for k in CONCURRENT_SPECIES}


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """One species × shard with shape and pose params (4 samples), materialised through Dagster."""
    root = tmp_path_factory.mktemp("sampled")
    settings = GenZooSettings(data_dir=str(root / "data"), samples_per_shard=4, resolution=64)
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [species], instance=instance, resources={"settings": settings}
        ).success
        key = sample_partition_key("panthera-leo", "000")
        assert dg.materialize(
            [shape_params, pose_params],
            instance=instance,
            resources={"settings": settings},
            partition_key=key,
        ).success
        yield instance, settings, key


def _ground_truth(root: Path):
    return query.query(
        "SELECT sample_id, betas, global_orient, body_pose, transl, keypoints_3d, yaw_deg FROM samples "
        "ORDER BY sample_id",
        data_dir=root,
    )


def test_rerunning_a_partition_is_idempotent(sampled):
    instance, settings, key = sampled
    root = settings.root()
    refresh.refresh_catalog(root)
    before = _ground_truth(root)
    assert dg.materialize(
        [shape_params, pose_params],
        instance=instance,
        resources={"settings": settings},
        partition_key=key,
    ).success
    refresh.refresh_catalog(root)
    after = _ground_truth(root)
    assert len(after) == len(before) == settings.samples_per_shard
    assert after["sample_id"].tolist() == before["sample_id"].tolist()
    for col in ("betas", "global_orient", "body_pose", "transl", "keypoints_3d"):
        np.testing.assert_array_equal(np.stack(after[col]), np.stack(before[col]), err_msg=col)
    np.testing.assert_array_equal(after["yaw_deg"], before["yaw_deg"])
    assert _count("SELECT count(*) - count(DISTINCT sample_id) FROM pose_params", root) == 0


def _retries(result) -> int:
    return sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def _fast_retries_for(asset, monkeypatch):
    """Same retry count as GPU_RETRY, without its 10 s back-off (the policy itself is asserted)."""
    assert asset.op.retry_policy == GPU_RETRY and GPU_RETRY.max_retries >= 1
    monkeypatch.setattr(
        asset.op, "_retry_policy", dg.RetryPolicy(max_retries=GPU_RETRY.max_retries)
    )


def _fast_retries(monkeypatch):
    _fast_retries_for(control_renders, monkeypatch)


def test_transient_gpu_fault_is_retried_then_succeeds(sampled, monkeypatch):
    instance, settings, key = sampled
    _fast_retries(monkeypatch)
    real, calls = render_core.render_partition, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(render_core, "render_partition", flaky)  # the asset imports it per call
    result = dg.materialize(
        [control_renders], instance=instance, resources={"settings": settings}, partition_key=key
    )
    assert result.success
    assert len(calls) == 2 and _retries(result) == 1
    assert (settings.root() / "control_renders" / "panthera-leo" / "000.parquet").exists()


def test_input_error_fails_at_once_without_retries(sampled, monkeypatch):
    instance, settings, key = sampled
    _fast_retries(monkeypatch)
    result = dg.materialize(
        [control_renders],
        instance=instance,
        resources={"settings": settings},
        partition_key=key,
        run_config={"ops": {"control_renders": {"config": {"resolution": -64}}}},
        raise_on_error=False,
    )
    assert not result.success
    assert _retries(result) == 0
    failure = [e for e in result.all_events if e.is_step_failure][0]
    assert "-64" in str(failure.event_specific_data.error)


def test_disk_full_mid_render_fails_once_with_one_line_and_leaves_no_temp(sampled, monkeypatch):
    instance, settings, key = sampled
    _fast_retries(monkeypatch)
    real, writes = Path.write_bytes, []

    def filling(self, data):
        writes.append(self)
        if len(writes) > 3:  # the disk fills up after three files
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", filling)
    result = dg.materialize(
        [control_renders],
        instance=instance,
        resources={"settings": settings},
        partition_key=key,
        raise_on_error=False,
    )
    assert not result.success
    assert _retries(result) == 0
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message.strip()
    target = (
        writes[-1].parent / writes[-1].name[1:].split("~")[0]
    )  # the file whose temporary hit the full disk
    assert "\n" not in message and "disk full" in message and str(target) in message, message
    assert [p for p in settings.root().rglob("*.tmp")] == []


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_output_modes_follow_the_umask(tmp_path, mask):
    """Files of every kind a partition writes (Parquet, PNG, npy, contact sheets, the catalog)."""
    settings = GenZooSettings(data_dir=str(tmp_path / "data"), samples_per_shard=2, resolution=64)
    old = os.umask(mask)
    try:
        with dg.instance_for_test() as instance:
            assert dg.materialize(
                [species], instance=instance, resources={"settings": settings}
            ).success
            assert dg.materialize(
                [shape_params, pose_params, control_renders],
                instance=instance,
                resources={"settings": settings},
                partition_key=sample_partition_key("panthera-leo", "000"),
            ).success
        refresh.refresh_catalog(settings.root())
    finally:
        os.umask(old)
    files = [p for p in settings.root().rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".parquet", ".png", ".npy", ".duckdb"}
    modes = {str(p.relative_to(settings.root())): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {oct(0o666 & ~mask)}, modes


def test_an_empty_validation_split_is_one_clear_error_not_retried(tmp_path, monkeypatch):
    _fast_retries_for(regressor, monkeypatch)
    shards = tmp_path / "data" / "shards"
    shards.mkdir(parents=True)
    manifest = {"format": webdataset.FORMAT, "counts": {"train": 5, "val": 0, "heldout": 12}}
    (shards / webdataset.MANIFEST).write_text(json.dumps(manifest))
    settings = GenZooSettings(data_dir=str(tmp_path / "data"))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [regressor],
            instance=instance,
            resources={"settings": settings},
            run_config={"ops": {"regressor": {"config": {"size": "tiny"}}}},
            raise_on_error=False,
        )
    assert not result.success and _retries(result) == 0
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.event_specific_data.error.message.strip()
    assert "\n" not in message and "the val split of the shard export is empty" in message, message
    assert not (tmp_path / "data" / "regressor" / "checkpoint.pt").exists()


@pytest.mark.slow
def test_demo_with_three_species_validates_on_samples_of_its_one_training_species(tmp_path):
    env = {**_env(tmp_path / "home"), "GENZOO_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "genzoo_assets.app.cli",
            "demo",
            "--species",
            "3",
            "--samples-per-shard",
            "6",
            "--resolution",
            "96",
            "--train-steps",
            "4",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    # One training species: its samples split so val is never empty (flagged images are left out of every split).
    split = re.search(
        r"\[4/6\] WebDataset shards: train (\d+), val (\d+), held-out Felidae (\d+)", out.stdout
    )
    assert split, out.stdout[-3000:]
    train, val, heldout = map(int, split.groups())
    assert train >= 1 and val >= 1 and heldout >= 1
    assert "[6/6]" in out.stdout and "pa_mpjpe" in out.stdout
