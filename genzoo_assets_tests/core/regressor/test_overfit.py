"""The training loop learns: a tiny regressor memorises the poses of 32 fixed training samples.

Each 9D pose term (global orientation and body pose, GenZoo's weighted MSE) on those 32 samples
must fall below 10 % of its starting value *and* below 10 % of what the best constant answer (the
per-element mean of the targets: the mean pose) scores. No constant predictor — an untrained
model, a loop that does not update, a pose head cut off from the image or fed mismatched labels —
can get there: its pose loss stays at or above the mean-pose loss. (Global orientation alone
falls fast; body pose is the slow term, about 11 % at 300 steps and 4-5 % at 400.)
"""

import pytest
import torch

from genzoo_assets.core.dataset.webdataset import export_shards
from genzoo_assets.core.regressor.data import CachedSplit, materialize
from genzoo_assets.core.regressor.losses import LossWeights, rotation_9d_loss
from genzoo_assets.core.regressor.model import RegressorConfig
from genzoo_assets.core.regressor.train import TrainConfig, train
from genzoo_assets_tests.core.regressor.synthetic import make_samples

HW = (64, 48)


@pytest.fixture(scope="module")
def fixed_samples(body_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("overfit")
    samples = make_samples(body_model, root, n=32, seed=1)
    export_shards(
        samples,
        root,
        root / "shards",
        heldout_families=(),
        val_fraction=0.0,
        maxcount=64,
        camera_version="v1",
    )
    data = materialize(
        CachedSplit(root / "shards", "train", input_hw=HW)
    )  # no augmentation: decode once
    assert len(data) == 32
    return data


TERMS = ("loss_global_orient", "loss_body_pose")


def mean_pose_losses(data, weights: LossWeights) -> dict[str, float]:
    """Each 9D pose term when the targets' per-element mean is the answer for every sample."""
    poses = torch.stack([ex["poses"] for ex in data]).reshape(len(data), 35, 9)
    mean = poses.mean(dim=0, keepdim=True).expand_as(poses)
    targets = poses.reshape(len(data), 35, 3, 3)
    return {
        "loss_global_orient": float(
            weights.global_orient * rotation_9d_loss(mean[:, :1], targets[:, :1])
        ),
        "loss_body_pose": float(weights.body_pose * rotation_9d_loss(mean[:, 1:], targets[:, 1:])),
    }


@pytest.mark.slow  # 400 steps: 19 s at load 2, 35 s at load 6
def test_a_tiny_regressor_drives_the_9d_pose_loss_on_32_samples_far_below_the_mean_pose(
    fixed_samples, body_model, tmp_path
):
    torch.set_num_threads(1)
    config = TrainConfig(
        regressor=RegressorConfig.tiny(body_model.num_betas, image_size=HW, backbone="resnet"),
        lr=2e-3,
        batch_size=32,
        max_steps=400,
        val_every=400,
        checkpoint_every=400,
        patience=10,
    )
    result = train(config, fixed_samples, fixed_samples, body_model, tmp_path)
    val = result.history[result.history["split"] == "val"]
    assert list(val["step"]) == [0, 400]
    reference = mean_pose_losses(fixed_samples, config.weights)
    for term in TERMS:
        start, end = float(val[term].iloc[0]), float(val[term].iloc[-1])
        assert start >= 0.9 * reference[term], (
            term,
            start,
            reference[term],
        )  # the rest pose is no better
        assert end < 0.1 * start and end < 0.1 * reference[term], (
            term,
            start,
            end,
            reference[term],
        )
