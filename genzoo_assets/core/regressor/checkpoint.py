"""Regressor checkpoints (``checkpoint.pt``, ``last.pt``): tensors and plain data only, loaded safely.

A checkpoint is a ``torch.save`` of a dict whose only non-tensor values are JSON-able data:
``config`` (``RegressorConfig`` as a JSON dict), ``body_model`` (the body model it was trained
with: ``sha256``, ``source``, ``num_betas``), ``model`` (the state dict) and, per file, ``step``,
``val_loss`` or the resume state (optimizer state dict, counters, history rows). Loading uses
``torch.load(weights_only=True)``, so a file planted in a shared data directory cannot run code:
a pickled callable is refused with a one-line error naming the file and the global.

Why not safetensors + JSON: ``last.pt`` also holds the optimizer state (nested dicts of tensors
and hyper-parameters), which safetensors cannot store without a second file format of our own;
``weights_only=True`` gives the same guarantee for one file.

The benchmark loads a checkpoint with the body model it will pose predictions with, and a model
other than the training one (another file, or another shape-space size) is refused: its betas
would mean something else.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from genzoo_assets.core.errors import InputError, MissingInputError
from genzoo_assets.core.paths import atomic_path
from genzoo_assets.core.regressor.model import GenZooRegressor, RegressorConfig, build_regressor


class CheckpointError(InputError):
    """A checkpoint is missing, corrupt, unsafe, or does not match the body model; names the file."""


def config_data(config: RegressorConfig) -> dict:
    """``config`` as plain JSON data (tuples become lists): what a checkpoint stores."""
    return json.loads(json.dumps(asdict(config)))


def body_model_identity(body_model) -> dict:
    """What a checkpoint records of its body model. The procedural model has no file and no
    sha256: its ``source`` (``procedural(num_betas=N)``) identifies it."""
    return {
        "sha256": getattr(body_model, "sha256", None),
        "source": str(getattr(body_model, "source", "")),
        "num_betas": int(body_model.num_betas),
    }


def save_checkpoint(
    path: str | os.PathLike, model_state: dict, config: RegressorConfig, body_model, **extra: Any
) -> Path:
    """Write (atomically) ``model_state`` with its config, body-model identity and ``extra`` plain data."""
    path = Path(path)
    state = {
        "config": config_data(config),
        "body_model": body_model_identity(body_model),
        "model": model_state,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def _refused(message: str) -> str | None:
    match = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if match is None:
        return None
    name = match.group(1)
    return name if "." in name else f"builtins.{name}"


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """The checkpoint's dict, through ``torch.load(weights_only=True)``; one-line errors naming ``path``."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"regressor checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _refused(str(exc))
        if refused:
            raise CheckpointError(
                f"regressor checkpoint {path}: refusing to load global {refused} "
                "(a checkpoint holds tensors and plain data only)"
            ) from exc
        raise CheckpointError(
            f"regressor checkpoint {path} is not a torch checkpoint of tensors and plain data "
            "(weights-only unpickling failed)"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split(". ")[0].split())
        raise CheckpointError(
            f"regressor checkpoint {path} is truncated or corrupt ({detail})"
        ) from exc
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise CheckpointError(f"regressor checkpoint {path} lacks 'config' and 'model' entries")
    return state


def check_body_model(state: dict, body_model, path: str | os.PathLike) -> None:
    """Refuse a ``body_model`` other than the one the checkpoint at ``path`` was trained with."""
    saved = state.get("body_model")
    if not isinstance(saved, dict):
        raise CheckpointError(
            f"regressor checkpoint {path} does not record the body model it was trained with "
            "(written by an older genzoo-assets): train it again"
        )
    have = body_model_identity(body_model)
    if saved.get("num_betas") != have["num_betas"]:
        raise CheckpointError(
            f"regressor checkpoint {path} predicts the {saved.get('num_betas')} betas of the body "
            f"model {saved.get('source')}, but the body model {have['source']} has {have['num_betas']}"
        )
    if saved.get("sha256") or have["sha256"]:
        same = saved.get("sha256") == have["sha256"]
    else:  # both procedural
        same = saved.get("source") == have["source"]
    if not same:
        raise CheckpointError(
            f"regressor checkpoint {path} was trained with the body model {saved.get('source')} "
            f"(sha256 {saved.get('sha256')}), not {have['source']} (sha256 {have['sha256']})"
        )


def load_regressor(path: str | os.PathLike, body_model=None, map_location="cpu") -> GenZooRegressor:
    """A regressor from ``checkpoint.pt``: config + weights in one file (no pretrained-backbone
    folder needed). With ``body_model``, a checkpoint trained with another model is refused."""
    path = Path(path)
    state = load_checkpoint(path, map_location=map_location)
    if body_model is not None:
        check_body_model(state, body_model, path)
    try:
        config = RegressorConfig.from_dict({**state["config"], "pretrained_backbone": None})
        model = build_regressor(config)
        model.load_state_dict(state["model"])
    except (TypeError, ValueError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(
            f"regressor checkpoint {path} does not fit its own config ({detail})"
        ) from exc
    return model.eval()
