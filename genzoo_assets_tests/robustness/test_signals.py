"""Signals: SIGTERM stops `genzoo demo` and `genzoo ui` with every process they started; a demo
killed with SIGKILL leaves no generation worker behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from genzoo_assets_tests.e2e.webui import ProcessTracker, free_port, wait_until_up

pytestmark = pytest.mark.slow  # each starts a demo or the web UI in a subprocess

REPO = Path(__file__).resolve().parents[2]
LEFT_WITHIN_S = 30.0  # the bound: nothing of theirs is left after this long


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "GENZOO_DATA_DIR": str(tmp_path / "data"),
        "PYOPENGL_PLATFORM": "egl",
        "PYTHONPATH": str(REPO),
    }
    env.pop("GENZOO_DEBUG", None)
    return env


def _demo(tmp_path: Path) -> subprocess.Popen:
    """A demo of 12 species (12 partitions to generate) on 2 workers, its output in demo.log."""
    log = open(tmp_path / "demo.log", "w")  # noqa: SIM115 (the child writes it)
    argv = ["demo", "--species", "12", "--samples-per-shard", "4", "--resolution", "64"]
    return subprocess.Popen(
        [sys.executable, "-m", "genzoo_assets.app.cli", *argv, "--workers", "2"],
        cwd=REPO,
        env=_env(tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_for_workers(proc: subprocess.Popen, tmp_path: Path, timeout: float = 240.0) -> list:
    """The demo's generation workers, once both are running and one partition is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "demo.log").read_text()
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True) if _worker(c)]
        if len(workers) >= 2 and re.search(
            r"\[2/6\]\s+1/\d+ ", (tmp_path / "demo.log").read_text()
        ):
            return workers
        time.sleep(0.5)
    raise AssertionError(f"no generation workers within {timeout:.0f} s")


def _worker(process: psutil.Process) -> bool:
    """Whether ``process`` is a spawned multiprocessing worker (a zombie or gone one is not)."""
    try:
        return "spawn_main" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.Error:
            continue
    return alive


def _gone_within(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while _alive(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _alive(processes)


def test_sigterm_stops_the_demo_its_workers_and_cancels_their_runs(tmp_path):
    proc = _demo(tmp_path)
    try:
        workers = _wait_for_workers(proc, tmp_path)
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=LEFT_WITHIN_S)
        assert not _gone_within(family, LEFT_WITHIN_S), _alive(family)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "demo.log").read_text()
    assert proc.returncode == 128 + signal.SIGTERM, log
    assert log.strip().splitlines()[-1] == "genzoo: stopped by SIGTERM", log
    assert "Traceback" not in log
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        statuses = [r.status for r in instance.get_runs()]
    assert dg.DagsterRunStatus.CANCELED in statuses, statuses
    assert dg.DagsterRunStatus.STARTED not in statuses, statuses
    assert all(not w.is_running() for w in workers)


def test_sigkill_of_the_demo_leaves_no_generation_worker(tmp_path):
    proc = _demo(tmp_path)
    try:
        workers = _wait_for_workers(proc, tmp_path)
        proc.kill()
        proc.wait(timeout=10)
        assert not _gone_within(workers, LEFT_WITHIN_S), _alive(workers)
    finally:
        for w in _alive(workers if "workers" in locals() else []):
            w.kill()


def test_sigterm_stops_genzoo_ui_and_its_whole_process_tree(tmp_path):
    port = free_port()
    with open(tmp_path / "ui.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "genzoo_assets.app.cli", "ui", "--port", str(port)],
            cwd=REPO,
            env=_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    tracker = ProcessTracker(proc)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", proc, timeout=180, log_path=tmp_path / "ui.log")
        tracker.snapshot()
        assert len(tracker.seen) >= 3, tracker.seen  # genzoo, dg dev and its servers
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + LEFT_WITHIN_S
        while tracker.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not tracker.alive(), tracker.alive()
        assert proc.wait(timeout=1) == 128 + signal.SIGTERM
    finally:
        for p in tracker.alive():
            p.kill()
