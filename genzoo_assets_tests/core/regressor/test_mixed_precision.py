"""The regressor trains and validates under bf16 autocast, the precision accelerate uses on CUDA.

A real-width ViT-H backbone (ViTPose-H: hidden 1280, 16 heads, mlp 5120, 256×192 input, patch 16:
192 tokens) cut to one layer so it fits CPU time, with HMR2's full-size head, random weights, run
through the project's own ``train`` inside ``torch.autocast("cpu", dtype=torch.bfloat16)``.
"""

import math

import pytest
import torch

from genzoo_assets.core.regressor.data import load_split, materialize
from genzoo_assets.core.regressor.model import RegressorConfig
from genzoo_assets.core.regressor.train import LOSS_TERMS, TrainConfig, evaluate, train

pytestmark = pytest.mark.slow  # a ViT-H-width step on CPU

VIT_H_INPUT = (256, 192)


def vit_h(num_betas: int) -> RegressorConfig:
    config = RegressorConfig(num_betas=num_betas, num_layers=1)
    assert (config.hidden_size, config.num_heads, config.patch_size) == (1280, 16, 16)
    assert config.image_size == VIT_H_INPUT
    return config


@pytest.fixture(scope="module")
def vit_h_splits(catalog):
    train_data = materialize(load_split(catalog["out_dir"], "train", input_hw=VIT_H_INPUT), limit=2)
    val_data = materialize(load_split(catalog["out_dir"], "val", input_hw=VIT_H_INPUT), limit=2)
    return train_data, val_data


def test_a_vit_h_training_step_and_validation_run_under_bf16_autocast(
    vit_h_splits, body_model, tmp_path
):
    config = TrainConfig(
        regressor=vit_h(body_model.num_betas),
        lr=1e-5,
        batch_size=2,
        max_steps=1,
        val_every=1,
        checkpoint_every=1,
        num_workers=0,
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = train(config, *vit_h_splits, body_model, tmp_path, resume=False)
    assert result.steps == 1 and result.skipped_steps == 0
    val = result.history[result.history["split"] == "val"]
    assert list(val["step"]) == [0, 1]
    assert all(math.isfinite(v) for v in val[list(LOSS_TERMS)].to_numpy().ravel())


def test_bf16_validation_losses_stay_close_to_float32(vit_h_splits, body_model):
    from accelerate import Accelerator

    from genzoo_assets.core.regressor.losses import LossWeights
    from genzoo_assets.core.regressor.model import build_regressor

    torch.manual_seed(0)
    model = build_regressor(vit_h(body_model.num_betas))
    assert model.backbone.encoder.layer[0].mlp.fc1.weight.shape == (5120, 1280)  # ViT-H's mlp
    assert model.features(torch.zeros(1, 3, *VIT_H_INPUT)).shape == (1, 192, 1280)
    loader = torch.utils.data.DataLoader(vit_h_splits[1], batch_size=2)
    accelerator = Accelerator(cpu=True)
    full = evaluate(model, loader, body_model, LossWeights(), accelerator)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = evaluate(model, loader, body_model, LossWeights(), accelerator)
    for term in LOSS_TERMS:
        assert half[term] == pytest.approx(full[term], rel=0.02), term
