"""The `regressor` asset's run config becomes the trainer's TrainConfig."""

from genzoo_assets.core.regressor.losses import LossWeights
from genzoo_assets.defs.training import RegressorTrainConfig, _train_config


def test_the_orientation_weight_reaches_the_loss_and_defaults_to_genzoo():
    assert _train_config(RegressorTrainConfig(size="tiny"), 41, "cpu").weights == LossWeights()
    weights = _train_config(
        RegressorTrainConfig(size="tiny", global_orient_weight=30.0), 41, "cpu"
    ).weights
    assert weights == LossWeights(global_orient=30.0)
    assert weights.body_pose == 100.0
