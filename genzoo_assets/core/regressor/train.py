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

What the tiny CPU regressor learns, and why (issue 12). Side-by-side runs, same seed, scored on
the same held-out Felidae (126 images of lion and lynx); PA-MPJPE ×1000, rest pose 83.8, the
training set's mean pose 87.2 on the 36-species data (88.8 on the 9-species data):

- The loop is not broken: ``test_overfit`` drives both 9D pose terms on 32 fixed samples below
  10 % of their start.
- What there is to win, from oracles on the held-out set (9-species data): the rest pose with
  zero betas scores 83.7; the mean pose of the sample's posture class (an oracle label) 66.4; the
  true pose 32.8; the rest pose with the true betas 73.7; and the training set's mean betas instead
  of zero 89.9. Posture is most of what can be won, and betas drifting towards the training
  species' shapes lose ground on felids.
- On the first demo data (574 images of 9 species) the model memorised: the training body-pose
  loss fell from 3.49 to 1.93 in 800 steps while validation stayed at the mean pose's level
  (3.75). **Species diversity** fixed that: the same 574 images drawn from 36 species instead of 9
  gave 81.6 against 85.8 (2,000 steps); all 2,289 images of the 36 species 78.1, with the
  validation body-pose loss at 1.88. So the demo draws 40 training species (``demo.py``).
  Twice as many species at half the samples each (80 × 32, 2,296 images, this configuration)
  scored 75.2 against 76.6 for the demo's 40 × 64 on the same 63 held-out images (rest pose 82.6),
  its validation betas a little better than zero for the first time: more species keep helping;
  the demo keeps 64 a species for a held-out set twice as large.
- Capacity: a three-stage ResNet (32, 64, 128) instead of two (16, 32): 84.0 against 92.9 after 800
  steps (``RegressorConfig.tiny``). Input 96×72 instead of 64×48: 77.0 against 78.1, for 1.8× the
  time: not kept.
- Steps and schedule: 3,000 steps instead of 2,000: 75.4; with the lr on a cosine from 5e-4: 75.7;
  from 1e-3 on a cosine: **74.6** (PA-V2V 62.2, below both baselines on all four 3D metrics) — the
  demo's setting (``lr_schedule``; GenZoo's own is constant).
- Betas are the remaining gap: with the predicted pose and zero betas the same model scores 70.7.
  The betas term barely falls even on training data (vertex L1 0.0316 m against 0.0332 m for zero
  betas: on the ten semantic axes, which alone would remove 96 % of zero betas' vertex error, the
  predictions have a tenth to a third of the true spread), and on unseen species the predicted betas are no better than
  zero. Weighting it 10× or 40× (500, 2000) gave 79.0 and 82.6 against 78.1: the pose got worse and
  the held-out betas no better; adding an HMR2-style MSE on the betas themselves (weight 1) made
  the validation species' betas worse than the untrained zero betas (that term plus the vertex
  term: 2.53 untrained, 2.72 after 800 steps). What is missing is
  species: shape that transfers needs more of them than a CPU demo renders. Kept at GenZoo's 50.
- More species, once rendering got cheaper (data rendered without subdivisions, which scored like
  GenZoo's two: 76.1 against 75.8 for the demo's 40 species; 64 samples a species, the same
  configuration): 37, 73 and 108 training species scored **76.1, 73.3 and 72.0** (zero betas with
  the same pose: 71.4, 70.7, 70.4). On the validation species (unseen, not felids) the predicted
  betas were no better than zero at 37 species (74.1 against 74.2) and better at 73 (73.3 against
  73.9): shape starts to transfer to species like the training ones; for felids zero is still
  better. Shrinking the predicted betas towards zero would help felids, but the validation species
  say not to (at 73 species, ×0.5 gave 73.4 against 73.3), so it is not done. The demo trains on
  60 species for 2,500 steps, what fits in 15 minutes (``demo.py``).
- Horizontal flips (``Augmentation.flip``; GenZoo has none), on the 40-species demo data: the
  validation body-pose loss fell to 1.58 against 1.73 (step 2,600), held-out Felidae barely moved
  (75.5 against 75.8). Off by default.
- **Run-to-run spread** (before the head change below; demo data, 60 species, 2,500 steps, one
  thread; only ``TrainConfig.seed`` changes, i.e. the initial weights and the batch order): seeds 0,
  1, 2 scored 75.6, 77.2 and 75.3. The validation body-pose loss sits at the mean pose's level
  (about 3.6) for a few hundred to over a thousand steps before it falls, and when it breaks away
  varies with the seed. So a single-seed difference under about 2 points is noise, and several
  single-seed findings above (the 96×72 input, flips, the lr schedules) are within it. Measured
  single-seed and not adopted for that reason: a 2-D sine position encoding on the ResNet's feature
  cells (75.0), GenZoo's global-orientation weight 100 lowered to 30 (72.2 at seed 0, 76.4 at seed 1
  with the 3D term below) or 10 (77.8), a 250-step lr warm-up (75.9, 77.1), lr 2e-3 (83.5, 75.7: one
  run never left the plateau). HMR2's 3D keypoint term (L1 on centred keypoints, weight 0.05; GenZoo
  computes it but leaves it out of the summed loss) scored 73.6 and 76.3 at seeds 0 and 1 against
  75.6 and 77.2 without it, and 77.2 / 78.5 against 77.5 / 78.3 on the validation species: two seeds
  do not decide it, so the loss stays GenZoo's.
- **The head could not see where things are, and that was the plateau** (``model.py``): the
  ResNet's 4×3 feature cells carry no position embedding, so HMR2's cross-attention head took them
  as an unordered set, through a query that starts at zero and attends to all of them equally.
  The tiny model's query now adds a linear map of the flattened feature map
  (``RegressorConfig.query_from_features``). Same data and settings, seeds 0 and 1: held-out
  74.4 and 72.5 against 75.6 and 77.2, validation species 75.4 and 75.3 against 77.5 and 78.3, and
  the validation body-pose loss falls from the first validation on (2.9 at step 250 against 3.6).
- With that head, GenZoo's global-orientation weight 100 lowered to 30
  (``RegressorTrainConfig.global_orient_weight``, the demo's), seeds 0, 1, 2: held-out 73.3, 72.6
  and 70.7 (mean 72.2 against 76.0 for the old head at weight 100), validation species 72.0, 71.4
  and 70.9 (77.6). Measured on top of it, seed 0: HMR2's 3D keypoint term made it worse (76.3,
  validation 78.0); a betas loss on T-pose vertices with centroid and scale removed (what weak
  perspective cannot see) scored 72.9 (validation 71.6): within the spread, so the loss stays
  GenZoo's. What time buys, seed 0: 3,000 steps 72.2 (validation 70.3), 3,500 steps 71.1 (69.5);
  80 species at 2,500 steps 71.4. lr 2e-3 instead of 1e-3: 72.7 (70.9), within the spread. The
  demo trains 3,500 steps on 60 species, which costs less time than 20 more species (``demo.py``).
- Betas, with that head (seed 1): the predicted pose with zero betas scores 69.5 on held-out felids
  against 72.6 with the predicted betas, but 74.1 against 71.4 on the validation species. Shape
  transfers to species like the training ones and not to felids; zeroing it would be tuning to
  the held-out family, so it is not done.
- Earlier (9-species data, 800 steps): 2D confidence 1 for occluded keypoints (GenZoo's) was the
  one loss change that helped (``losses.py``); lr 2e-3 constant, GenZoo's rotation and scale
  jitter, a ×34 body-pose weight and a 3D keypoint term did not.
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

    def report(metrics: dict) -> None:
        """``progress`` with the run's standing: best validation so far and the time left."""
        if progress is None:
            return
        done = state["step"] - start_step
        elapsed = time.monotonic() - t0
        left = elapsed / done * (config.max_steps - state["step"]) if done else math.nan
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
