"""The GPU bench and `make gpu-check`, as far as a machine without a GPU can run them."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

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


def _block_linear_flops(model, forward) -> float:
    """Matmul FLOPs torch counts inside the model's transformer blocks during ``forward()``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        forward()
    prefix = type(model).__name__
    return float(
        sum(
            sum(ops.values())
            for name, ops in counter.get_flop_counts().items()
            if re.fullmatch(rf"{prefix}\.(single_)?transformer_blocks\.\d+", name)
        )
    )


@pytest.mark.parametrize("family", ["flux", "qwenimage"])
def test_the_flops_model_counts_what_torch_counts_in_the_blocks(monkeypatch, family):
    """Each Linear at the tokens it sees (torch's counter; CPU attention is not in its table)."""
    monkeypatch.syspath_prepend(str(REPO))
    from diffusers import QwenImageTransformer2DModel

    from bench.flux_gpu import network_flops
    from genzoo_assets_tests.fixtures.tiny_flux import TINY_QWEN_TRANSFORMER, tiny_transformer

    torch.manual_seed(0)
    image, text = 12, 5
    if family == "flux":  # two double-stream and three single-stream blocks
        model = tiny_transformer(num_layers=2, num_single_layers=3).eval()
        kwargs = dict(
            pooled_projections=torch.randn(1, model.config.pooled_projection_dim),
            guidance=torch.tensor([3.5]),
            img_ids=torch.zeros(image, 3),
            txt_ids=torch.zeros(text, 3),
        )
    else:
        model = QwenImageTransformer2DModel(**TINY_QWEN_TRANSFORMER).eval()
        kwargs = dict(encoder_hidden_states_mask=torch.ones(1, text), img_shapes=[(1, 3, 4)])
    cfg = model.config

    def forward():
        model(
            hidden_states=torch.randn(1, image, cfg.in_channels),
            encoder_hidden_states=torch.randn(1, text, cfg.joint_attention_dim),
            timestep=torch.tensor([0.5]),
            **kwargs,
        )

    counted = _block_linear_flops(model, forward)
    blocks = len(model.transformer_blocks) + len(getattr(model, "single_transformer_blocks", []))
    width = cfg.num_attention_heads * cfg.attention_head_dim
    attention = 4.0 * (image + text) ** 2 * width * blocks
    assert counted > 0 and network_flops(model, image, text) == counted + attention


def test_a_bench_heartbeat_notes_a_long_call_and_stops_with_it(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO))
    from bench.notes import heartbeat

    with heartbeat("default, batch 1", every_s=0.05):
        time.sleep(0.3)
    during = capsys.readouterr().err.splitlines()
    assert len(during) >= 2
    assert all(
        re.search(r"^\[[\d:]{8}\] default, batch 1: still running \(\d+ s\)$", line)
        for line in during
    )
    time.sleep(0.15)
    assert capsys.readouterr().err == ""  # the thread ended with the block
