"""The `regressor` asset's run config becomes the trainer's TrainConfig, or one line saying why not."""

import dagster as dg
import pytest

from genzoo_assets.core.regressor.loader import default_num_workers
from genzoo_assets.core.regressor.losses import LossWeights
from genzoo_assets.defs.resources import GPU_RETRY, GenZooSettings, SettingError
from genzoo_assets.defs.training import RegressorTrainConfig, _train_config, regressor


def test_the_orientation_weight_reaches_the_loss_and_defaults_to_genzoo():
    assert _train_config(RegressorTrainConfig(size="tiny"), 41, "cpu").weights == LossWeights()
    weights = _train_config(
        RegressorTrainConfig(size="tiny", global_orient_weight=30.0), 41, "cpu"
    ).weights
    assert weights == LossWeights(global_orient=30.0)
    assert weights.body_pose == 100.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", float("inf")),
        ("lr", "Infinity"),
        ("global_orient_weight", float("nan")),
        ("grayscale", "NaN"),
    ],
)
def test_a_non_finite_value_is_refused_by_name(field, value):
    with pytest.raises(SettingError) as err:
        RegressorTrainConfig(**{field: value})
    message = str(err.value)
    assert f"RegressorTrainConfig.{field} = " in message and "finite" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("size", "device"), [("huge", "cpu"), ("auto", "cuda"), ("auto", "cuda:1")]
)
def test_vit_h_without_pretrained_weights_is_refused_unless_from_scratch(size, device):
    with pytest.raises(SettingError, match="pretrained_backbone.*from_scratch: true") as err:
        _train_config(RegressorTrainConfig(size=size), 41, device)
    assert "\n" not in str(err.value)
    huge = _train_config(RegressorTrainConfig(size=size, from_scratch=True), 41, device)
    assert huge.regressor.hidden_size == 1280 and huge.regressor.pretrained_backbone is None


def test_a_pretrained_backbone_needs_no_from_scratch(tmp_path):
    cfg = _train_config(
        RegressorTrainConfig(size="huge", pretrained_backbone=str(tmp_path)), 41, "cpu"
    )
    assert cfg.regressor.pretrained_backbone == str(tmp_path)


def test_the_worker_count_reaches_the_trainer():
    assert (
        _train_config(RegressorTrainConfig(size="tiny", num_workers=3), 41, "cpu").num_workers == 3
    )
    default = _train_config(RegressorTrainConfig(size="tiny"), 41, "cpu").num_workers
    assert default == -1 and default_num_workers() >= 0
    with pytest.raises(SettingError, match=r"num_workers = -2: must be >= -1"):
        RegressorTrainConfig(num_workers=-2)
    with pytest.raises(SettingError, match=r"max_val_samples = 0: must be >= 1"):
        RegressorTrainConfig(max_val_samples=0)


def test_a_non_finite_run_config_fails_once_without_retries(tmp_path):
    assert regressor.op.retry_policy == GPU_RETRY and GPU_RETRY.max_retries >= 1
    result = dg.materialize(
        [regressor],
        resources={"settings": GenZooSettings(data_dir=str(tmp_path / "data"))},
        run_config={"ops": {"regressor": {"config": {"size": "tiny", "lr": float("inf")}}}},
        raise_on_error=False,
    )
    assert not result.success
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "RegressorTrainConfig.lr = inf: must be a finite number" in str(
        failure.event_specific_data.error.message
    )
