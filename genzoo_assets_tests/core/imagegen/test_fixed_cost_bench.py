"""``bench/fixed_cost.py``: the fixed-cost fraction and the line it prints."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def fixed_cost(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from bench import fixed_cost

    return fixed_cost


def test_the_fraction_at_the_paper_sizes(fixed_cost):
    """8 s of start-up and 34 GB at 1 GB/s against 64 images of 5 s: 42 / (42 + N * 320)."""
    line = fixed_cost.fixed_cost_line(8.0, 1.0, 680_000_000, 5.0, "given: x", 34.0, 64, 8, "cpu")
    assert "start-up 8.0 s + load 34.0 GB at 1.00 GB/s (0.68 GB layer read back) = 42.0 s" in line
    assert line.endswith("-> 11.6% at 1 partition a step, 1.6% at 8 (target <= 5%)")
    assert fixed_cost.fraction(8.0, 34.0, 3, 64, 5.0) == pytest.approx(42 / (42 + 3 * 320))


def test_a_given_image_time_needs_its_source():
    proc = subprocess.run(
        [sys.executable, "bench/fixed_cost.py", "--image-seconds", "5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 2 and "--image-source" in proc.stderr


@pytest.mark.slow  # fresh interpreters and a 0.68 GB layer written and read back (~1 min)
def test_the_bench_measures_start_up_and_load_here(tmp_path):
    proc = subprocess.run(
        [sys.executable, "bench/fixed_cost.py", "--start-repeats", "1", "--dir", str(tmp_path)]
        + ["--image-seconds", "5", "--image-source", "a test's figure", "--device", "cpu"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    line = re.fullmatch(
        r"fixed cost \(cpu\): start-up (\S+) s \+ load 34\.0 GB at (\S+) GB/s "
        r"\((\S+) GB layer read back\).*\(given: a test's figure\) x 64 a partition -> "
        r"\S+% at 1 partition a step, \S+% at 8 \(target <= 5%\)\n",
        proc.stdout,
    )
    assert line, proc.stdout
    start, gbps, layer = (float(g) for g in line.groups())
    assert start > 0 and gbps > 0
    assert layer == pytest.approx(0.68, abs=0.01)  # 339.8 M bf16 parameters
    assert list(tmp_path.iterdir()) == []  # the layer file is removed


def test_the_image_time_is_read_from_the_flux_bench_table(fixed_cost):
    """The rows as ``bench/flux_gpu.py`` prints them (CPU run of issue 24's closing note)."""
    out = (
        "flux  device: cpu  256x256  steps: 1  random weights, 1 block(s) per network\n"
        "setting           batch images/GPU-h   s/image  TFLOP/img  TFLOP/s    MFU  align    Δpx\n"
        "notebook              1         15.0   239.700      1.81  0.00755    n/a  0.061      -\n"
        "default               1         18.2   197.300      1.81  0.00917    n/a  0.061   0.00\n"
    )
    assert fixed_cost.image_seconds_from(out) == 197.3
    with pytest.raises(RuntimeError, match="no 'default' row"):
        fixed_cost.image_seconds_from("default               1 out of memory\n")
