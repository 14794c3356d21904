"""The GPU bench and `make gpu-check`, as far as a machine without a GPU can run them."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _run(*args, timeout=600, **env):
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"PYTHONPATH": str(REPO)} | env,
    )


def test_gpu_check_without_a_gpu_says_so_in_one_line_and_fails():
    proc = _run("bench/gpu_check.py", CUDA_VISIBLE_DEVICES="")
    assert proc.returncode == 2
    assert proc.stdout.strip().splitlines() == [
        "gpu-check: no CUDA GPU on this machine (torch sees none); nothing was run "
        "(--cpu runs the CPU mode)"
    ]


def test_a_bench_missing_from_the_branch_is_not_a_pass(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from bench import gpu_check

    with pytest.raises(gpu_check.Unavailable, match="bench/no_such_bench.py not available"):
        gpu_check.check_script("no_such_bench.py", [])


@pytest.mark.slow
def test_gpu_check_cpu_mode_prints_a_table():
    proc = _run(
        "bench/gpu_check.py",
        "--cpu",
        "--only",
        "egl render",
        "dagster partition",
        DAGSTER_HOME=os.environ.get("DAGSTER_HOME", str(REPO / ".dagster_home")),
    )
    out = proc.stdout
    assert re.search(r"^egl render\s+pass\s+GL_RENDERER ", out, re.M), out + proc.stderr
    assert re.search(r"^dagster partition\s+pass\s+4 samples, 6 assets", out, re.M), out
    assert proc.returncode == 0 and "2/2 passed" in out


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_flux_bench_random_weights_runs_on_cpu_at_real_width():
    proc = _run(
        "bench/flux_gpu.py",
        "--random-weights",
        "--resolution",
        "256",
        "--settings",
        "default",
        timeout=3500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "random weights, 1 block(s) per network" in out and "256x256  steps: 1" in out
    row = re.search(r"^default\s+1\s+([\d.]+)\s+([\d.]+)\s+([\d.e+-]+)", out, re.M)
    assert row, out
    images_per_hour, seconds, tflop = map(float, row.groups())
    assert images_per_hour == pytest.approx(3600 / seconds, rel=0.01)
    assert tflop > 1.0, "one real-width block of each network is over a TFLOP per image at 256²"
    assert "best default batch size: 1" in out
