"""Training loop: AdamW, accelerate (mixed precision, multi-GPU), checkpoints, early stopping, resume.

Files in ``out_dir``: ``checkpoint.pt`` (best on validation 2D keypoint loss: config + weights;
written only by a validation after a training step that beat every earlier one, the untrained
baseline included, so a run that trains nothing, or nothing better, never replaces it),
``config.json`` (its ``RegressorConfig``), ``last.pt`` (the latest state for resuming: weights,
optimizer, step, early-stopping counters, history), ``history.parquet`` and ``loss_curve.png``.
They belong to the run that wrote the checkpoint: a new run (not resuming) writes none of them
before its first checkpoint, so a run that fails, diverges to NaN or trains nothing better leaves
the previous run's files as they were (a NaN row never replaces a good history).

Progress: ``progress(step, total, metrics)`` after every validation (the loss terms) and, between
validations, at least every ``PROGRESS_EVERY_S`` seconds (``train_loss``: the mean objective since
the last report); every call also carries ``best_val``, ``best_step`` and ``eta_s`` (time left at
this run's pace). ``progress_line`` words it for a log.

Data: the training split is read by DataLoader workers (``loader.py``; ``num_workers``, default
the step's CPUs minus one) into pinned memory on CUDA; the validation split is whatever the caller
passes, decoded once (the asset passes a bounded uint8 ``validation.ValidationSplit``).

A step whose gradients are not finite (SVD orthogonalisation's backward pass at nearly equal
singular values, or a bad sample) does not update the weights: it is counted in
``TrainResult.skipped_steps`` (the asset's metadata), and ten in a row stop the run with a
``FloatingPointError`` that says so. Without that, one such step turned every weight to NaN and
killed a demo-sized run (80 species, flips on) between steps 400 and 500 with an SVD error.

History rows with ``split == "train"`` hold the step's objective as optimised (GenZoo's 2D term
is a sum over the batch); ``split == "val"`` rows are per-sample means over the whole validation
split, so early stopping and the best checkpoint do not depend on the batch size.
GenZoo's lr is 1e-5 for ViT-H; the tiny CPU
demo uses ~1e-3 because a randomly initialised 2-layer model learns nothing useful at 1e-5 in a
few hundred steps.

The tiny CPU regressor's design (its data, capacity, schedule and loss weights) was chosen in
side-by-side runs logged in ``docs/experiments/tiny-regressor.md``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch

from genzoo_assets.core.paths import atomic_path
from genzoo_assets.core.regressor.checkpoint import (
    check_body_model,
    config_data,
    load_checkpoint,
    save_checkpoint,
)
from genzoo_assets.core.regressor.loader import make_loader, resolve_num_workers
from genzoo_assets.core.regressor.losses import LossWeights, regressor_losses
from genzoo_assets.core.regressor.model import RegressorConfig, build_regressor
from genzoo_assets.core.regressor.plots import plot_loss_curve

LOSS_TERMS = ("loss", "loss_keypoints_2d", "loss_global_orient", "loss_body_pose", "loss_betas")
HISTORY_COLUMNS = ("step", "epoch", "split", *LOSS_TERMS, "lr", "elapsed_s")
LR_SCHEDULES = ("constant", "cosine")
# A step whose gradients are not finite is skipped (the weights stay as they were); this many in a
# row means the run has diverged, and it stops with an error rather than train on.
MAX_SKIPPED_IN_A_ROW = 10
# Between validations, ``progress`` hears from training at least this often (after the first step
# that ends this long after the last report), so a long run is never silent for 30 s.
PROGRESS_EVERY_S = 15.0


def learning_rate(config: TrainConfig, step: int) -> float:
    """The lr of training step ``step`` (0-based): a pure function of the step, so resuming needs no scheduler state."""
    if config.lr_schedule == "cosine":
        return (
            config.lr
            * 0.5
            * (1.0 + math.cos(math.pi * min(step, config.max_steps) / config.max_steps))
        )
    return config.lr


@dataclass
class TrainConfig:
    regressor: RegressorConfig = field(default_factory=RegressorConfig)
    lr: float = 1e-5
    lr_schedule: str = (
        "constant"  # or "cosine": lr · ½(1 + cos(π · step / max_steps)), a function of the step
    )
    weight_decay: float = 1e-4
    batch_size: int = 128
    max_steps: int = 100_000
    val_every: int = 1000  # steps between validations (and best-checkpoint updates)
    checkpoint_every: int = 1000  # steps between last.pt saves
    patience: int = 10  # validations without improvement before stopping
    min_delta: float = 0.0
    mixed_precision: str = "bf16"  # used on CUDA only; CPU always runs in float32
    # DataLoader workers for the training split; None: the CPUs this process may use minus one
    # (``loader.default_num_workers``). Validation examples are decoded once (``validation.py``).
    num_workers: int | None = None
    seed: int = 0
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self):
        for name, value in [
            *((k, getattr(self, k)) for k in ("lr", "weight_decay", "min_delta")),
            *((f"weights.{k}", v) for k, v in asdict(self.weights).items()),
        ]:
            if not math.isfinite(value):
                raise ValueError(f"TrainConfig.{name} = {value!r}: must be a finite number")
        if self.num_workers is not None and self.num_workers < -1:
            raise ValueError(
                f"TrainConfig.num_workers = {self.num_workers!r}: must be >= 0, or -1/None for "
                "the default"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"TrainConfig.lr_schedule = {self.lr_schedule!r}: must be one of {LR_SCHEDULES}"
            )
        for name in ("batch_size", "max_steps", "val_every", "checkpoint_every", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} = {getattr(self, name)!r}: must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    checkpoint_path: Path
    best_val_loss: float
    best_step: int
    steps: int
    stopped_early: bool
    history: pd.DataFrame
    skipped_steps: int = 0  # steps whose gradients were not finite, so the optimizer did not step


def backward_pass(model, batch, body_model, weights, optimizer, accelerator) -> dict:
    """One training step up to the gradients: forward (under accelerate's autocast), GenZoo's
    losses, backward. The loss terms (0-d tensors); the caller steps the optimizer."""
    with accelerator.autocast():
        out = model(batch["img"])
    terms = regressor_losses(out, batch, body_model, weights)
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(terms["loss"])
    return terms


@torch.no_grad()
def evaluate(model, loader, body_model, weights: LossWeights, accelerator) -> dict[str, float]:
    """Per-sample means of every loss term over a whole split."""
    model.eval()
    sums = dict.fromkeys(LOSS_TERMS, 0.0)
    count = 0
    for batch in loader:
        with accelerator.autocast():
            out = model(batch["img"])
        terms = regressor_losses(out, batch, body_model, weights, return_per_sample=True)
        per_kp = accelerator.gather_for_metrics(terms["per_sample_keypoints_2d"])
        n = int(per_kp.shape[0])
        sums["loss_keypoints_2d"] += float(per_kp.sum())
        for k in ("loss_global_orient", "loss_body_pose", "loss_betas"):
            sums[k] += float(terms[k]) * n  # mean-reduced terms: weight by batch size
        count += n
    model.train()
    if count == 0:
        raise ValueError("validation data is empty")
    means = {k: v / count for k, v in sums.items()}
    means["loss"] = sum(means[k] for k in LOSS_TERMS[1:])
    return means


def _save_best(path: Path, model, config: TrainConfig, body_model, step: int, val: float) -> None:
    save_checkpoint(
        path / "checkpoint.pt",
        model.state_dict(),
        config.regressor,
        body_model,
        step=step,
        val_loss=val,
    )
    with atomic_path(path / "config.json") as tmp:
        tmp.write_text(config.regressor.to_json())


def _write_history(out_dir: Path, rows: list[dict], plot: bool = True) -> pd.DataFrame:
    """``history.parquet`` and (when ``plot``: at checkpoints and at the end) ``loss_curve.png``."""
    history = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    with atomic_path(out_dir / "history.parquet") as tmp:
        history.to_parquet(tmp, index=False)
    if plot:
        with atomic_path(out_dir / "loss_curve.png") as tmp:
            plot_loss_curve(history, tmp)
    return history


def train(
    config: TrainConfig,
    train_data,
    val_data,
    body_model,
    out_dir,
    progress: Callable | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train a ``GenZooRegressor``; see the module docstring for the files written.

    ``train_data``/``val_data`` are torch datasets of examples as ``data.make_example`` builds
    them (map-style or iterable). Validation runs before the first step (the baseline) and every
    ``val_every`` steps; ``progress(step, total_steps, metrics)`` is called after each.
    With ``resume`` and a ``last.pt`` in ``out_dir``, training continues from its
    step, weights, optimizer state and early-stopping counters.
    """
    from accelerate import Accelerator

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from accelerate.utils import DataLoaderConfiguration

    cuda = torch.cuda.is_available()
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision if cuda else "no",
        cpu=not cuda,
        dataloader_config=DataLoaderConfiguration(non_blocking=cuda),  # pinned → async copies
    )
    torch.manual_seed(config.seed)
    model = build_regressor(config.regressor)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    state = {
        "step": 0,
        "epoch": 0,
        "best_val": math.inf,
        "best_step": -1,
        "bad_evals": 0,
        "history": [],
        "skipped_steps": 0,
    }
    last = out_dir / "last.pt"
    if resume and last.is_file():
        saved = load_checkpoint(last)
        if config_data(RegressorConfig.from_dict(saved["config"])) != config_data(config.regressor):
            raise ValueError(
                f"{last} was trained with a different RegressorConfig; pass resume=False or another out_dir"
            )
        check_body_model(saved, body_model, last)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state.update({k: saved[k] for k in state if k in saved})
    # The files in out_dir belong to the run that wrote the checkpoint. A fresh run takes them over
    # when it writes its first checkpoint; until then (and if it fails or never beats the untrained
    # baseline) the previous run's history, curve, last.pt and checkpoint stay as they were.
    owns_files = bool(state["history"])
    train_loader = make_loader(
        train_data,
        config.batch_size,
        True,
        resolve_num_workers(config.num_workers),
        config.seed + state["epoch"],
        pin_memory=cuda,
    )
    val_loader = make_loader(val_data, config.batch_size, False, 0, config.seed, pin_memory=cuda)
    model, optimizer, train_loader, val_loader = accelerator.prepare(
        model, optimizer, train_loader, val_loader
    )
    body_model = body_model.to(accelerator.device).eval()
    for p in body_model.parameters():
        p.requires_grad_(False)
    rows, t0 = state["history"], time.monotonic()
    stopped_early, skipped_in_a_row = False, 0
    start_step = state["step"]
    heartbeat = {"at": t0, "losses": []}
    saved_at = {"step": None}  # the step of the latest last.pt

    def report(metrics: dict) -> None:
        """``progress`` with the run's standing: best validation so far and the time left."""
        done = state["step"] - start_step
        elapsed = time.monotonic() - t0
        left = elapsed / done * (config.max_steps - state["step"]) if done else math.nan
        if progress is not None:
            progress(
                state["step"],
                config.max_steps,
                {
                    **metrics,
                    "best_val": state["best_val"],
                    "best_step": state["best_step"],
                    "eta_s": left,
                },
            )
        heartbeat.update(at=time.monotonic(), losses=[])

    def save_last():
        if state["step"] == saved_at["step"]:  # the first checkpoint's step saved it already
            return
        saved_at["step"] = state["step"]
        if accelerator.is_main_process and owns_files:
            save_checkpoint(
                last,
                accelerator.unwrap_model(model).state_dict(),
                config.regressor,
                body_model,
                optimizer=optimizer.state_dict(),
                **{**state, "history": rows},
            )
            _write_history(out_dir, rows)

    def validate():
        nonlocal stopped_early, owns_files
        metrics = evaluate(model, val_loader, body_model, config.weights, accelerator)
        rows.append(
            {
                "step": state["step"],
                "epoch": state["epoch"],
                "split": "val",
                **metrics,
                "lr": learning_rate(config, state["step"]),
                "elapsed_s": time.monotonic() - t0,
            }
        )
        if metrics["loss_keypoints_2d"] < state["best_val"] - config.min_delta:
            state.update(
                best_val=metrics["loss_keypoints_2d"], best_step=state["step"], bad_evals=0
            )
            if state["step"] > 0:  # an untrained model never replaces a checkpoint
                if accelerator.is_main_process:
                    _save_best(
                        out_dir,
                        accelerator.unwrap_model(model),
                        config,
                        body_model,
                        state["step"],
                        state["best_val"],
                    )
                if not owns_files:  # this run's checkpoint: its last.pt and history go with it
                    owns_files = True
                    save_last()
        else:
            state["bad_evals"] += 1
            stopped_early = state["bad_evals"] >= config.patience
        if accelerator.is_main_process and owns_files:
            _write_history(out_dir, rows, plot=False)
        report(metrics)

    model.train()
    if state["step"] == 0 and not rows:
        validate()  # the untrained baseline: the curve's first point and the first "best"
    while state["step"] < config.max_steps and not stopped_early:
        seen = 0
        if hasattr(train_data, "set_epoch"):  # before the iterator forks the workers
            train_data.set_epoch(state["epoch"])
        for batch in train_loader:
            terms = backward_pass(model, batch, body_model, config.weights, optimizer, accelerator)
            lr = learning_rate(config, state["step"])
            for group in optimizer.param_groups:
                group["lr"] = lr
            if _finite_gradients(model):
                optimizer.step()
                skipped_in_a_row = 0
            else:  # a singular SVD or a bad sample: one NaN update would poison every weight
                state["skipped_steps"] += 1
                skipped_in_a_row += 1
                if skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
                    raise FloatingPointError(
                        f"training diverged: {skipped_in_a_row} steps in a row up to step {state['step'] + 1} had "
                        f"non-finite gradients (loss {float(terms['loss'].detach()):.4g}); lower lr (now {lr:.3g}) "
                        f"or check the training data; {out_dir / 'checkpoint.pt'} holds the best model so far"
                    )
            state["step"] += 1
            seen += 1
            rows.append(
                {
                    "step": state["step"],
                    "epoch": state["epoch"],
                    "split": "train",
                    **{k: float(v.detach()) for k, v in terms.items()},
                    "lr": lr,
                    "elapsed_s": time.monotonic() - t0,
                }
            )
            heartbeat["losses"].append(rows[-1]["loss"])
            if state["step"] % config.val_every == 0 or state["step"] >= config.max_steps:
                validate()
            elif time.monotonic() - heartbeat["at"] >= PROGRESS_EVERY_S:
                report({"train_loss": sum(heartbeat["losses"]) / len(heartbeat["losses"])})
            if (
                state["step"] % config.checkpoint_every == 0
                or state["step"] >= config.max_steps
                or stopped_early
            ):
                save_last()
            if state["step"] >= config.max_steps or stopped_early:
                break
        if seen == 0:
            raise ValueError("training data is empty")
        state["epoch"] += 1
    accelerator.wait_for_everyone()
    if state["best_step"] < 0:
        validate()
    if accelerator.is_main_process and owns_files:
        history = _write_history(out_dir, rows)
    else:
        history = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    return TrainResult(
        out_dir / "checkpoint.pt",
        state["best_val"],
        state["best_step"],
        state["step"],
        stopped_early,
        history,
        state["skipped_steps"],
    )


def progress_line(step: int, total: int, metrics: dict) -> str:
    """One log line for a ``progress`` call: step, loss, best validation so far, time left."""
    parts = [f"training step {step}/{total}"]
    if "train_loss" in metrics:
        parts.append(f"loss {metrics['train_loss']:.4g}")
    if "loss_keypoints_2d" in metrics:
        parts.append(f"validation keypoint loss {metrics['loss_keypoints_2d']:.4g}")
    best = metrics.get("best_val", math.nan)
    if math.isfinite(best):
        parts.append(f"best validation {best:.4g} (step {metrics.get('best_step')})")
    left = metrics.get("eta_s", math.nan)
    if math.isfinite(left):
        parts.append(f"{_duration(left)} left")
    return ", ".join(parts)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _finite_gradients(model) -> bool:
    """Whether every gradient is finite (after DDP's all-reduce, so every rank agrees): one norm
    over all of them, so the hot loop waits on the device once a step, not once per parameter."""
    norms = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    return not norms or bool(torch.isfinite(torch.stack(norms)).all())
