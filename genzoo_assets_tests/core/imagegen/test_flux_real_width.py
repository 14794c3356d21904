"""``bench/flux_gpu.py --random-weights`` on CPU: the project's own FLUX generator at 1024² on
FLUX.1-dev's real widths (3072 hidden, 24 heads × 128, T5-XXL's 4096, the 16-channel VAE at full
width), one block of each network (one resnet per VAE encoder resolution, two per decoder
resolution), bf16: the shapes and dtype the
GPU run uses, through the command a lab runs on its first node.

One generation serves both: the bench's table is checked, and the generator it built is caught on
its way out of ``random_generator`` to check what it built and drew. This CPU has no bf16 units
(bf16 matmuls and convolutions run at about a fifth of fp32's rate), so this one image costs about
six minutes of one core, most of it the VAE decoder at 1024²; a second real-width build and image
(a separate bench test at 256², as before) cost another 70 s of the suite for nothing new."""

import re
from pathlib import Path

import pytest
import torch

from genzoo_assets.core.imagegen import random_weights

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def built(monkeypatch):
    """Every generator ``random_generator`` builds, with the images its ``generate`` returns."""
    out = []
    real = random_weights.random_generator

    def spy(*args, **kwargs):
        gen = real(*args, **kwargs)
        images = []
        generate = gen.generate

        def recording(requests):
            images.extend(result := generate(requests))
            return result

        gen.generate = recording
        out.append((gen, images))
        return gen

    monkeypatch.setattr(random_weights, "random_generator", spy)
    return out


def test_flux_bench_at_1024_runs_the_generator_on_real_width_bf16_weights(
    built, monkeypatch, capsys
):
    base, nets = random_weights.flux_configs(layers=1)
    assert (
        base["transformer"]["num_attention_heads"] * base["transformer"]["attention_head_dim"]
        == 3072
    )
    assert base["text_encoder_2"]["d_model"] == 4096 and nets[0]["num_layers"] == 1
    monkeypatch.syspath_prepend(str(REPO))
    from bench import flux_gpu

    assert flux_gpu.main(["--random-weights", "--device", "cpu", "--settings", "default"]) == 0
    out, err = capsys.readouterr()
    assert "default: building the pipeline" in err and "default, batch 1: 1 timed call(s)" in err
    assert re.search(r"default, batch 1: still running \(\d+ s\)", err), err  # minutes on CPU
    assert re.search(r"default, batch 1: [\d.]+ s$", err, re.M), err

    ((gen, images),) = built
    pipe = gen.pipeline
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.text_encoder_2.dtype == torch.bfloat16
    assert pipe.vae.dtype == torch.bfloat16 and len(pipe.controlnet.nets) == 2
    assert (
        gen.params["dtype"] == "bfloat16"
        and gen.model_hashes["base"] == "random:flux1_dev/layers=1"
    )
    (image,) = images
    assert image.size == (1024, 1024) and image.mode == "RGB"

    assert "1024x1024  steps: 1  random weights, 1 block(s) per network" in out, out
    assert "dtype: bfloat16" in out, out
    row = re.search(r"^default\s+1\s+([\d.]+)\s+([\d.]+)\s+([\d.e+-]+)", out, re.M)
    assert row, out
    images_per_hour, seconds, tflop = map(float, row.groups())
    assert images_per_hour == pytest.approx(3600 / seconds, rel=0.01)
    # T = 64² image + 512 text tokens; four real-width blocks (a double and a single block in the
    # transformer, a double block in each ControlNet) at 1.30 TFLOP each
    assert tflop == pytest.approx(
        flux_gpu.flops_per_image(gen, 1024, 1024, flux_gpu.PROMPT) / 1e12, rel=1e-3
    )
    assert tflop == pytest.approx(5.219, rel=1e-3)
    assert "best default batch size: 1" in out
