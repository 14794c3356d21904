"""The project's own FLUX generator on FLUX.1-dev's real widths (3072 hidden, 24 heads × 128,
T5-XXL's 4096, the 16-channel VAE at full width), one block of each (one resnet per VAE
resolution), bf16, 1024²: the shapes and dtype the GPU run uses, on CPU. This CPU has no bf16
units, so bf16 convolutions run ~5× slower than fp32: the VAE decoder at two resnets per
resolution alone took most of the test's seven minutes, hence its truncation too."""

import numpy as np
import pytest
import torch

from genzoo_assets.core.imagegen.base import GenerationRequest
from genzoo_assets.core.imagegen.random_weights import flux_configs, random_generator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def test_flux_generator_real_width_bf16_1024():
    base, nets = flux_configs(layers=1)
    assert (
        base["transformer"]["num_attention_heads"] * base["transformer"]["attention_head_dim"]
        == 3072
    )
    assert base["text_encoder_2"]["d_model"] == 4096 and nets[0]["num_layers"] == 1
    gen = random_generator(
        "flux", device="cpu", dtype=torch.bfloat16, layers=1, steps=1, batch_size=1, resolution=1024
    )
    pipe = gen.pipeline
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.text_encoder_2.dtype == torch.bfloat16
    assert len(pipe.controlnet.nets) == 2
    size = 256  # controls at another size are resized by the pipeline, as in production
    mask = np.zeros((size, size), bool)
    mask[64:192, 48:208] = True
    req = GenerationRequest(
        "real_width.0",
        "a photo of a dog",
        (mask * 255).astype(np.uint8),
        (mask * 200).astype(np.uint8),
        mask,
        np.zeros((size, size, 3), np.uint8),
        0,
    )
    (image,) = gen.generate([req])
    assert image.size == (1024, 1024) and image.mode == "RGB"
    assert (
        gen.params["dtype"] == "bfloat16"
        and gen.model_hashes["base"] == "random:flux1_dev/layers=1"
    )
