"""Regressor construction: config round trip, both backbones, offline pretrained loading."""

import json

import pytest
import torch

from genzoo_assets.core.regressor.model import RegressorConfig, build_regressor


def test_config_json_round_trip_and_output_shapes():
    cfg = RegressorConfig.tiny(num_betas=7)
    again = RegressorConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    out = build_regressor(cfg)(torch.randn(2, 3, 64, 48))
    assert out.raw9d.shape == (2, 35, 9) and out.rotmat.shape == (2, 35, 3, 3)
    assert out.betas.shape == (2, 7) and out.cam.shape == (2, 3)
    eye = torch.eye(3).expand(2, 35, 3, 3)
    assert torch.allclose(out.rotmat @ out.rotmat.transpose(-1, -2), eye, atol=1e-5)
    with pytest.raises(ValueError, match="images must be"):
        build_regressor(cfg)(torch.randn(2, 3, 64, 64))


def test_resnet_backbone():
    out = build_regressor(RegressorConfig.tiny(num_betas=5, backbone="resnet"))(
        torch.randn(1, 3, 64, 48)
    )
    assert out.cam.shape == (1, 3) and torch.isfinite(out.raw9d).all()


@pytest.mark.parametrize("from_features", [False, True])
def test_query_from_features_lets_the_head_see_where_features_are(from_features):
    """Cross-attention is blind to the order of its tokens, and the ResNet's carry no position
    embedding: with HMR2's learned query, swapping two cells of the feature map changes nothing.
    The tiny model's query from the flattened map tells them apart."""
    torch.manual_seed(0)
    cfg = RegressorConfig.tiny(num_betas=4, backbone="resnet")
    cfg.query_from_features = from_features
    model = build_regressor(cfg).eval()
    feats = model.features(torch.randn(1, 3, 64, 48))
    assert feats.shape[1] == 12  # 4 × 3 cells at 64 × 48
    swapped = feats[:, [1, 0, *range(2, 12)]]
    outs = []
    for f in (feats, swapped):
        model.features = lambda images, f=f: f
        outs.append(model(torch.zeros(1, 3, 64, 48)).raw9d)
    assert (model.query_proj is not None) == from_features
    assert torch.allclose(outs[0], outs[1], atol=1e-6) != from_features


def test_building_the_model_leaves_batchnorm_statistics_untouched():
    """The token-count probe must not feed BatchNorm: the untrained baseline is evaluated with its statistics."""
    model = build_regressor(RegressorConfig.tiny(num_betas=4, backbone="resnet"))
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and model.training and model.backbone.training
    for m in norms:
        assert torch.equal(m.running_mean, torch.zeros_like(m.running_mean))
        assert torch.equal(m.running_var, torch.ones_like(m.running_var))
        assert int(m.num_batches_tracked) == 0


def test_pretrained_vitpose_loaded_offline_from_a_local_folder(tmp_path):
    from transformers import (
        VitPoseBackbone,
        VitPoseBackboneConfig,
        VitPoseConfig,
        VitPoseForPoseEstimation,
    )

    small = dict(
        image_size=[64, 48],
        patch_size=[8, 8],
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        out_indices=[-1],
    )
    VitPoseBackbone(VitPoseBackboneConfig(**small)).save_pretrained(tmp_path / "backbone")
    full = VitPoseForPoseEstimation(VitPoseConfig(backbone_config=VitPoseBackboneConfig(**small)))
    full.save_pretrained(tmp_path / "full")
    for folder, reference in (("backbone", None), ("full", full.backbone)):
        cfg = RegressorConfig.tiny(num_betas=3)
        cfg.pretrained_backbone = str(tmp_path / folder)
        model = build_regressor(cfg)
        assert model.context_proj.in_features == 32
        if reference is not None:
            for k, v in reference.state_dict().items():
                assert torch.equal(model.backbone.state_dict()[k], v)
    with pytest.raises(FileNotFoundError, match="config.json"):
        cfg.pretrained_backbone = str(tmp_path / "nowhere")
        build_regressor(cfg)
