"""The device lease with GENZOO_FAKE_GPUS: which devices, exclusive holders, SIGKILL frees a device."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genzoo_assets.core import lease
from genzoo_assets.core.lease import Device, LeaseError, try_acquire, visible_devices

HOLDER = """
import json, sys, time
from genzoo_assets.core import lease
out, seconds = sys.argv[1], float(sys.argv[2])
with lease.hold() as held:
    start = time.time()
    open(out + ".started", "w").close()
    time.sleep(seconds)
    end = time.time()
json.dump({"device": held.device.key, "index": held.device.ordinal, "start": start, "end": end,
           "described": held.describe()}, open(out, "w"))
"""


def _env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    return {**env, "GENZOO_GPU_LOCK_DIR": str(tmp_path / "locks"), **extra}


def _holder(tmp_path, name: str, seconds: float, env: dict) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / f"{name}.json"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), str(seconds)], env=env)
    return proc, out


def _wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_visible_devices_follow_cuda_visible_devices_and_the_fake_count():
    fake = {"GENZOO_FAKE_GPUS": "8"}
    assert [d.key for d in visible_devices(fake)] == [str(i) for i in range(8)]
    two = visible_devices({**fake, "CUDA_VISIBLE_DEVICES": "2,5"})
    assert [(d.ordinal, d.key, d.fake) for d in two] == [(0, "2", True), (1, "5", True)]
    # CUDA stops reading the list at the first invalid entry; a hidden list means no device
    assert [d.key for d in visible_devices({**fake, "CUDA_VISIBLE_DEVICES": "3,-1,4"})] == ["3"]
    assert visible_devices({**fake, "CUDA_VISIBLE_DEVICES": ""}) == []
    real = visible_devices({"CUDA_VISIBLE_DEVICES": "GPU-aa,GPU-bb"}, count=lambda: 2)
    assert [(d.ordinal, d.key, d.fake) for d in real] == [
        (0, "GPU-aa", False),
        (1, "GPU-bb", False),
    ]
    assert [d.key for d in visible_devices({}, count=lambda: 3)] == ["0", "1", "2"]
    assert visible_devices({"SLURM_JOB_ID": "7"}, count=lambda: 8) == []  # a job given no GPU
    with pytest.raises(LeaseError, match="GENZOO_FAKE_GPUS='two'"):
        visible_devices({"GENZOO_FAKE_GPUS": "two"})


def test_cuda_visible_devices_2_5_leases_only_those(tmp_path):
    env = {
        "GENZOO_FAKE_GPUS": "8",
        "CUDA_VISIBLE_DEVICES": "2,5",
        "GENZOO_GPU_LOCK_DIR": str(tmp_path),
    }
    devices = visible_devices(env)
    first, second = try_acquire(devices, env), try_acquire(devices, env)
    try:
        assert {first.device.key, second.device.key} == {"2", "5"}
        assert try_acquire(devices, env) is None  # both held: no third device exists
        assert first.describe()["index"] == 0 and first.torch_device == "cpu"
        assert "fake GPU 2" in first.describe()["name"]
    finally:
        first.release()
        second.release()
    again = try_acquire(devices, env)
    assert again is not None and again.device.key == "2"
    again.release()


def test_lock_files_are_per_slurm_job_whose_devices_restart_at_zero(tmp_path):
    device = Device(0, "0")
    a = {"SLURM_JOB_ID": "11", "GENZOO_GPU_LOCK_DIR": str(tmp_path)}
    b = {"SLURM_JOB_ID": "12", "GENZOO_GPU_LOCK_DIR": str(tmp_path)}
    held_a, held_b = try_acquire([device], a), try_acquire([device], b)
    assert held_a is not None and held_b is not None and held_a.path != held_b.path
    held_a.release()
    held_b.release()


@pytest.mark.slow  # eight interpreters on a shared 2-core machine
def test_eight_concurrent_holders_over_four_devices_never_share_one(tmp_path):
    env = _env(tmp_path, GENZOO_FAKE_GPUS="4")
    procs = [_holder(tmp_path, f"step{i}", 1.5, env) for i in range(8)]
    for proc, _ in procs:
        assert proc.wait(timeout=120) == 0
    records = [json.loads(out.read_text()) for _, out in procs]
    by_device: dict[str, list] = {}
    for r in records:
        by_device.setdefault(r["device"], []).append((r["start"], r["end"]))
    assert set(by_device) <= {"0", "1", "2", "3"} and len(by_device) >= 2
    for device, spans in by_device.items():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end, f"device {device} held by two steps at once: {spans}"
    # never more than four at a time, and more than one at a time (the devices were used side by side)
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    running, peak = 0, 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert 2 <= peak <= 4


def test_a_sigkilled_holder_frees_its_device_for_the_next(tmp_path):
    env = _env(tmp_path, GENZOO_FAKE_GPUS="1")
    first, first_out = _holder(tmp_path, "first", 600, env)
    _wait(lambda: Path(f"{first_out}.started").exists(), 60, "the first holder's lease")
    second, second_out = _holder(tmp_path, "second", 0, env)
    time.sleep(1.0)
    assert second.poll() is None and not Path(f"{second_out}.started").exists()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert second.wait(timeout=60) == 0
    assert json.loads(second_out.read_text())["device"] == "0"


def test_hold_without_devices_holds_nothing_and_nested_use_keeps_the_outer_lease(tmp_path):
    env = {"GENZOO_FAKE_GPUS": "2", "GENZOO_GPU_LOCK_DIR": str(tmp_path)}
    with lease.hold(devices=[], env=env) as none:
        assert none is None and lease.current() is None
    with lease.hold(env=env) as outer:
        with lease.hold(env=env) as inner:
            assert inner is outer and lease.current() is outer
    assert lease.current() is None
    with pytest.raises(LeaseError, match="no GPU free within 0 s"):
        held = [try_acquire(visible_devices(env), env) for _ in range(2)]
        try:
            lease.acquire(visible_devices(env), env, timeout_s=0)
        finally:
            for h in held:
                h.release()


def test_provenance_names_the_leased_device_only_while_one_is_held(tmp_path):
    from genzoo_assets.core.provenance import provenance

    env = {
        "GENZOO_FAKE_GPUS": "4",
        "CUDA_VISIBLE_DEVICES": "3",
        "GENZOO_GPU_LOCK_DIR": str(tmp_path),
    }
    with lease.hold(env=env):
        record = provenance("images", "render")
    assert record["device"]["index"] == 0 and record["device"]["visible_id"] == "3"
    assert "device" not in provenance("images", "render")


def test_a_process_gets_the_device_it_held_last_when_it_is_free(tmp_path, monkeypatch):
    monkeypatch.setattr(lease, "_last_key", None)  # earlier tests in this process held some
    env = {"GENZOO_FAKE_GPUS": "4", "GENZOO_GPU_LOCK_DIR": str(tmp_path)}
    devices = visible_devices(env)
    other = try_acquire(devices[:2], env)  # another process holds device 0
    with lease.hold(env=env) as first:
        assert first.device.key == "1"
    other.release()
    with lease.hold(env=env) as again:
        assert again.device.key == "1"  # not 0, though 0 is free now and first in the list


def test_without_a_gpu_driver_the_count_is_zero_and_torch_stays_unimported(tmp_path):
    code = (
        "import sys; from genzoo_assets.core import lease; "
        f"print(lease.local_gpu_count(({str(tmp_path / 'no-driver')!r},)), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False"]


def test_with_a_gpu_driver_node_torch_counts(tmp_path):
    import torch

    node = tmp_path / "nvidiactl"
    node.touch()
    expected = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert lease.local_gpu_count((str(node),)) == expected
