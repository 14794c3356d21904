"""Checkpoints: plain data only, loaded with weights_only=True, tied to the body model they were trained with."""

import json
import types

import pytest
import torch

from genzoo_assets.core.regressor.checkpoint import (
    CheckpointError,
    body_model_identity,
    load_checkpoint,
    load_regressor,
    save_checkpoint,
)
from genzoo_assets.core.regressor.model import RegressorConfig, build_regressor
from genzoo_assets.core.regressor.train import TrainConfig, train
from genzoo_assets_tests.fixtures.malicious import Exec


def _smal(sha="a" * 64, num_betas=4):
    return types.SimpleNamespace(sha256=sha, source="/models/smal.pkl", num_betas=num_betas)


def _saved(tmp_path, body):
    cfg = RegressorConfig.tiny(num_betas=body.num_betas)
    model = build_regressor(cfg).eval()
    return model, save_checkpoint(
        tmp_path / "checkpoint.pt", model.state_dict(), cfg, body, step=3, val_loss=0.5
    )


def test_round_trip_keeps_weights_and_stores_plain_data(tmp_path):
    body = _smal()
    model, path = _saved(tmp_path, body)
    x = torch.randn(2, 3, 64, 48)
    loaded = load_regressor(path, body_model=body)
    assert torch.equal(loaded(x).raw9d, model(x).raw9d)
    state = torch.load(path, weights_only=True)
    assert json.loads(json.dumps(state["config"])) == state["config"]
    assert state["body_model"] == {"sha256": "a" * 64, "source": "/models/smal.pkl", "num_betas": 4}
    assert state["step"] == 3 and state["val_loss"] == 0.5
    with pytest.raises(FileNotFoundError, match="none.pt"):
        load_regressor(tmp_path / "none.pt")


@pytest.mark.parametrize(
    "other, words",
    [
        (_smal(sha="b" * 64), ["trained with the body model /models/smal.pkl", "aaaa", "bbbb"]),
        (
            _smal(num_betas=145),
            ["predicts the 4 betas of the body model /models/smal.pkl", "has 145"],
        ),
        (
            types.SimpleNamespace(sha256=None, source="procedural(num_betas=4)", num_betas=4),
            ["procedural(num_betas=4)"],
        ),
    ],
)
def test_another_body_model_is_refused(other, words, tmp_path):
    _, path = _saved(tmp_path, _smal())
    with pytest.raises(CheckpointError) as exc:
        load_regressor(path, body_model=other)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    for word in words:
        assert word in str(exc.value)


def test_procedural_models_match_by_source(tmp_path, body_model):
    _, path = _saved(tmp_path, body_model)
    assert body_model_identity(body_model)["sha256"] is None
    load_regressor(path, body_model=body_model)


def test_checkpoint_without_body_model_is_refused(tmp_path):
    cfg = RegressorConfig.tiny(num_betas=4)
    torch.save(
        {"config": cfg.__dict__, "model": build_regressor(cfg).state_dict()}, tmp_path / "old.pt"
    )
    with pytest.raises(CheckpointError, match="does not record the body model"):
        load_regressor(tmp_path / "old.pt", body_model=_smal())


def _evil(path, marker):
    torch.save({"config": Exec(marker), "model": {}}, path)
    torch.load(path, weights_only=False)  # the payload is live: plain torch.load runs it
    assert marker.exists()
    marker.unlink()


def test_malicious_checkpoint_is_refused_without_running(tmp_path):
    marker, path = tmp_path / "touched", tmp_path / "checkpoint.pt"
    _evil(path, marker)
    with pytest.raises(CheckpointError) as exc:
        load_regressor(path)
    assert not marker.exists()
    assert str(exc.value) == (
        f"regressor checkpoint {path}: refusing to load global builtins.exec "
        "(a checkpoint holds tensors and plain data only)"
    )


def test_malicious_last_pt_does_not_run_on_resume(tmp_path, body_model):
    marker = tmp_path / "touched"
    _evil(tmp_path / "last.pt", marker)
    cfg = TrainConfig(regressor=RegressorConfig.tiny(num_betas=body_model.num_betas), max_steps=1)
    with pytest.raises(CheckpointError, match="last.pt: refusing to load global builtins.exec"):
        train(cfg, [], [], body_model, tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"garbage" * 20, "truncate"])
def test_corrupt_checkpoint_gives_one_line(content, tmp_path):
    _, path = _saved(tmp_path, _smal())
    path.write_bytes(path.read_bytes()[:200] if content == "truncate" else content)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
