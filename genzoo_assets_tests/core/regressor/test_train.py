"""Training on tiny synthetic data: the validation loss falls, early stopping stops, resume continues."""

import numpy as np
import pandas as pd
import pytest
import torch

from genzoo_assets.core.regressor.checkpoint import load_checkpoint, load_regressor
from genzoo_assets.core.regressor.crop import from_crop_coords
from genzoo_assets.core.regressor.data import Augmentation, load_split, materialize
from genzoo_assets.core.regressor.model import RegressorConfig
from genzoo_assets.core.regressor.predict import predict_split
from genzoo_assets.core.regressor.train import TrainConfig, learning_rate, train

pytestmark = pytest.mark.slow  # training loops


@pytest.fixture(scope="module")
def splits(catalog):
    hw = (64, 48)
    train_data = materialize(
        load_split(catalog["out_dir"], "train", input_hw=hw, augment=Augmentation(colour=0.1))
    )
    val_data = materialize(load_split(catalog["out_dir"], "val", input_hw=hw))
    return train_data, val_data


def config(body_model, **kw):
    base = dict(
        regressor=RegressorConfig.tiny(num_betas=body_model.num_betas),
        lr=2e-3,
        batch_size=8,
        max_steps=30,
        val_every=10,
        checkpoint_every=10,
        patience=100,
        num_workers=0,  # the loop, not the workers (test_loader.py): no fork per tiny epoch
    )
    return TrainConfig(**{**base, **kw})


def test_validation_loss_falls_and_files_are_written(splits, body_model, tmp_path):
    calls = []
    result = train(
        config(body_model, max_steps=20),
        *splits,
        body_model,
        tmp_path,
        progress=lambda step, total, metrics: calls.append(
            (step, total, metrics.get("loss_keypoints_2d"))
        ),
    )
    val = result.history[result.history["split"] == "val"]
    assert list(val["step"]) == [0, 10, 20]
    assert val["loss_keypoints_2d"].iloc[-1] < 0.7 * val["loss_keypoints_2d"].iloc[0]
    assert result.best_val_loss == pytest.approx(val["loss_keypoints_2d"].min())
    validations = [c for c in calls if c[2] is not None]  # the others: progress between them
    assert [c[0] for c in validations] == [0, 10, 20] and calls[0][1] == 20
    assert result.steps == 20 and not result.stopped_early
    for name in ("checkpoint.pt", "config.json", "last.pt", "history.parquet", "loss_curve.png"):
        assert (tmp_path / name).is_file(), name
    assert len(pd.read_parquet(tmp_path / "history.parquet")) == len(result.history)

    model = load_regressor(result.checkpoint_path, body_model=body_model)
    preds = predict_split(model, splits[1], body_model, batch_size=4)
    assert len(preds) == len(splits[1])
    assert {"sample_id", "rotmat", "betas", "cam", "keypoints_2d_crop", "keypoints_2d_px"} <= set(
        preds.columns
    )
    row, ex = preds.iloc[0], splits[1][0]
    px = from_crop_coords(np.reshape(row["keypoints_2d_crop"], (26, 2)), ex["box"].numpy())
    np.testing.assert_allclose(np.reshape(row["keypoints_2d_px"], (26, 2)), px, atol=1e-6)


def test_early_stopping_stops_when_validation_stalls(splits, body_model, tmp_path):
    result = train(
        config(body_model, lr=0.0, val_every=1, patience=2), *splits, body_model, tmp_path
    )
    assert result.stopped_early
    assert result.steps == 2


def test_a_run_that_trains_nothing_better_never_replaces_the_checkpoint(
    splits, body_model, tmp_path
):
    (tmp_path / "checkpoint.pt").write_bytes(b"a trained checkpoint")
    result = train(
        config(body_model, lr=0.0, val_every=1, patience=2),
        *splits,
        body_model,
        tmp_path,
        resume=False,
    )
    assert (
        result.steps == 2 and result.best_step == 0
    )  # two steps at lr 0: no better than untrained
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"a trained checkpoint"


@pytest.mark.parametrize("field", ["max_steps", "val_every", "batch_size", "patience"])
def test_training_counts_below_one_are_refused(body_model, field):
    with pytest.raises(ValueError, match=f"TrainConfig.{field} = -1: must be >= 1"):
        config(body_model, **{field: -1})


def test_resume_continues_from_the_checkpoint_step(splits, body_model, tmp_path):
    first = train(
        config(body_model, max_steps=3, val_every=3, checkpoint_every=3),
        *splits,
        body_model,
        tmp_path,
    )
    assert first.steps == 3
    steps = []
    second = train(
        config(body_model, max_steps=5, val_every=1, checkpoint_every=1),
        *splits,
        body_model,
        tmp_path,
        progress=lambda step, total, metrics: steps.append(step),
    )
    assert steps == [4, 5] and second.steps == 5
    trained = second.history[second.history["split"] == "train"]["step"].tolist()
    assert trained == [1, 2, 3, 4, 5]
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["step"] == 5
    assert all(int(s["step"]) == 5 for s in last["optimizer"]["state"].values())


@pytest.mark.parametrize(
    "schedule, expected", [("constant", [1e-3, 1e-3, 1e-3]), ("cosine", [1e-3, 5e-4, 0.0])]
)
def test_learning_rate_is_a_function_of_the_step(body_model, schedule, expected):
    cfg = config(body_model, lr=1e-3, max_steps=10, lr_schedule=schedule)
    assert [learning_rate(cfg, s) for s in (0, 5, 10)] == pytest.approx(expected, abs=1e-12)


def test_an_unknown_lr_schedule_is_refused(body_model):
    with pytest.raises(ValueError, match="TrainConfig.lr_schedule = 'step': must be one of"):
        config(body_model, lr_schedule="step")


def test_cosine_schedule_sets_the_optimiser_lr_and_survives_resume(splits, body_model, tmp_path):
    train(
        config(body_model, max_steps=2, val_every=2, checkpoint_every=2, lr_schedule="cosine"),
        *splits,
        body_model,
        tmp_path,
    )
    result = train(
        config(body_model, max_steps=4, val_every=2, checkpoint_every=2, lr_schedule="cosine"),
        *splits,
        body_model,
        tmp_path,
    )
    rows = result.history[result.history["split"] == "train"]
    cfg4 = config(body_model, max_steps=4, lr_schedule="cosine")
    assert rows["lr"].tolist()[2:] == pytest.approx([learning_rate(cfg4, s) for s in (2, 3)])
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["optimizer"]["param_groups"][0]["lr"] == pytest.approx(learning_rate(cfg4, 3))


def _poisoned_losses(monkeypatch, poisoned_calls):
    """Training losses whose backward pass gives NaN gradients on the given training calls (1-based)."""
    import genzoo_assets.core.regressor.train as train_module

    real, calls = train_module.regressor_losses, {"n": 0}

    def losses(output, batch, body_model, weights, return_per_sample=False):
        terms = real(output, batch, body_model, weights, return_per_sample=return_per_sample)
        if not return_per_sample:  # a training step, not a validation batch
            calls["n"] += 1
            if poisoned_calls(calls["n"]):
                terms["loss"] = terms["loss"] * torch.tensor(float("nan"))
        return terms

    monkeypatch.setattr(train_module, "regressor_losses", losses)


def test_a_step_with_non_finite_gradients_is_skipped_and_counted(
    splits, body_model, tmp_path, monkeypatch
):
    _poisoned_losses(monkeypatch, lambda n: n in (3, 4))
    result = train(
        config(body_model, max_steps=12, val_every=6, checkpoint_every=6),
        *splits,
        body_model,
        tmp_path,
    )
    assert result.steps == 12 and result.skipped_steps == 2
    weights = load_checkpoint(tmp_path / "last.pt")["model"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
    val = result.history[result.history["split"] == "val"]
    assert (
        val["loss_keypoints_2d"].notna().all()
        and val["loss_keypoints_2d"].iloc[-1] < val["loss_keypoints_2d"].iloc[0]
    )


def test_a_diverged_run_stops_with_an_error_that_says_so(splits, body_model, tmp_path, monkeypatch):
    _poisoned_losses(monkeypatch, lambda n: n > 2)
    with pytest.raises(
        FloatingPointError,
        match=r"training diverged: 10 steps in a row up to step 12 had non-finite "
        r"gradients.*lower lr",
    ):
        train(config(body_model, max_steps=30), *splits, body_model, tmp_path)


def _files(out_dir) -> dict[str, bytes]:
    names = ("checkpoint.pt", "last.pt", "history.parquet", "loss_curve.png", "config.json")
    return {n: (out_dir / n).read_bytes() for n in names}


def test_a_failed_run_leaves_the_previous_runs_files_as_they_were(
    splits, body_model, tmp_path, monkeypatch
):
    train(
        config(body_model, max_steps=10, val_every=5, checkpoint_every=5),
        *splits,
        body_model,
        tmp_path,
    )
    before = _files(tmp_path)
    _poisoned_losses(monkeypatch, lambda n: True)  # NaN from the first step: diverges at step 10
    with pytest.raises(FloatingPointError, match="training diverged"):
        train(
            config(body_model, max_steps=30, val_every=5),
            *splits,
            body_model,
            tmp_path,
            resume=False,
        )
    assert _files(tmp_path) == before


def test_a_run_takes_over_the_files_with_its_first_checkpoint(splits, body_model, tmp_path):
    train(
        config(body_model, max_steps=10, val_every=5, checkpoint_every=5),
        *splits,
        body_model,
        tmp_path,
    )
    result = train(
        config(body_model, max_steps=6, val_every=3, checkpoint_every=100),
        *splits,
        body_model,
        tmp_path,
        resume=False,
    )
    assert result.best_step > 0
    history = pd.read_parquet(tmp_path / "history.parquet")
    assert history["step"].max() == 6 and len(history) == len(result.history)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 6


def test_progress_between_validations_carries_loss_best_and_time_left(
    splits, body_model, tmp_path, monkeypatch
):
    import genzoo_assets.core.regressor.train as train_module

    monkeypatch.setattr(train_module, "PROGRESS_EVERY_S", 0.0)
    calls = []
    train(
        config(body_model, max_steps=6, val_every=3),
        *splits,
        body_model,
        tmp_path,
        progress=lambda step, total, metrics: calls.append((step, dict(metrics))),
    )
    beats = [(s, m) for s, m in calls if "train_loss" in m]
    assert [s for s, _ in beats] == [1, 2, 4, 5]  # validations at 0, 3, 6 report the val terms
    for _, metrics in calls:
        assert {"best_val", "best_step", "eta_s"} <= metrics.keys()
    assert all(np.isfinite(m["train_loss"]) and m["eta_s"] > 0 for _, m in beats)
    step, metrics = beats[1]
    line = train_module.progress_line(step, 6, metrics)
    assert line.startswith("training step 2/6, loss ") and "best validation" in line
    assert line.endswith(" s left")


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        ("lr", float("inf"), "lr"),
        ("weight_decay", float("nan"), "weight_decay"),
        ("weights", "global_orient", "weights.global_orient"),
    ],
)
def test_non_finite_values_are_refused_by_name(body_model, field, value, name):
    from genzoo_assets.core.regressor.losses import LossWeights

    if field == "weights":
        kw = {"weights": LossWeights(global_orient=float("nan"))}
    else:
        kw = {field: value}
    with pytest.raises(ValueError, match=rf"TrainConfig\.{name} = \w+: must be a finite number"):
        config(body_model, **kw)
