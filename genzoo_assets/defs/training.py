"""WebDataset export of the catalog's samples and the GenZoo regressor trained on it."""

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
import pydantic

from genzoo_assets.core import layout
from genzoo_assets.core.catalog import query
from genzoo_assets.core.dataset import webdataset
from genzoo_assets.core.dataset.splits import DEFAULT_HELDOUT_FAMILIES
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.tables import read_table, write_table_atomic
from genzoo_assets.defs.catalog import EAGER_ALLOW_MISSING, catalog
from genzoo_assets.defs.gpu import on_leased_gpu
from genzoo_assets.defs.io import image_markdown, progress_log
from genzoo_assets.defs.resources import (
    GPU_STEP,
    CheckedFields,
    GenZooSettings,
    SettingError,
    at_least,
    between,
    checked,
    existing_dir,
    fail_fast_on_input_errors,
    one_of,
)

# The regressor's modules import torch: the step imports them, not the definitions when they load.
if TYPE_CHECKING:
    from genzoo_assets.core.regressor.data import Augmentation
    from genzoo_assets.core.regressor.train import TrainConfig

SAMPLES_SQL = "SELECT * FROM samples WHERE image_path IS NOT NULL ORDER BY sample_id"


class ExportConfig(CheckedFields, dg.Config):
    heldout_families: list[str] = list(DEFAULT_HELDOUT_FAMILIES)  # GenZoo-Felidae: every cat
    val_fraction: float = 0.1
    exclude_flagged: bool = True
    camera_version: str = (
        "v2"  # GenZoo's conventions (docs/ARCHITECTURE.md): v2 transls + fovs; v1 scales, txs, tys
    )
    maxcount: int = 1000

    _val = checked("val_fraction", check=between(0.0, 1.0, below_high=True))
    _maxcount = checked("maxcount", check=at_least(1))
    _camera = checked("camera_version", check=one_of("v1", "v2"))


def _shard_progress(context: dg.AssetExecutionContext):
    """The export's ``progress`` as "WebDataset shards written i/n" lines (``progress_log``)."""
    log = progress_log(context, "WebDataset shards written", every=8)
    return lambda samples, total, shards, n_shards: log(shards, n_shards)


@dg.asset(
    deps=[catalog],
    group_name="training",
    kinds={"parquet"},
    automation_condition=EAGER_ALLOW_MISSING,
)
def dataset_shards(
    context: dg.AssetExecutionContext, config: ExportConfig, settings: GenZooSettings
):
    """`shards/current/<split>-NNNNNN.tar` in the layout GenZoo's trainer reads, split by species."""
    root = settings.root()
    samples = query.query(SAMPLES_SQL, data_dir=root)
    if samples.empty:
        raise InputError(
            "the catalog has no samples with images: materialise `images` partitions and `catalog` first"
        )
    out = webdataset.export_shards(
        samples,
        root,
        layout.shards_dir(root),
        heldout_families=tuple(config.heldout_families),
        val_fraction=config.val_fraction,
        exclude_flagged=config.exclude_flagged,
        maxcount=config.maxcount,
        camera_version=config.camera_version,
        body_model=settings.body(),
        progress=_shard_progress(context),
    )
    return dg.MaterializeResult(
        metadata={
            **{f"samples_{k}": int(v) for k, v in out["counts"].items()},
            **{f"excluded_{k}": int(v) for k, v in out["excluded"].items()},
            "num_shards": len(out["shards"]),
            "shards_written": out["written"],
            "shards_reused": out["reused"],
            "manifest": dg.MetadataValue.path(str(out["manifest"])),
        }
    )


class RegressorTrainConfig(CheckedFields, dg.Config):
    size: Literal["auto", "tiny", "huge"] = (
        "auto"  # huge (ViT-H, GenZoo's) | tiny (CPU) | auto: huge on CUDA, tiny otherwise
    )
    backbone: Literal["vitpose", "resnet"] = "vitpose"
    pretrained_backbone: str = ""  # local ViTPose directory (transformers format)
    batch_size: int = 128
    lr: float = 0.0  # 0: 1e-5 (GenZoo) for ViT-H, 2e-3 for the tiny CPU model
    lr_schedule: Literal["constant", "cosine"] = (
        "constant"  # constant (GenZoo) | cosine decay to 0 at max_steps
    )
    max_steps: int = 100_000
    val_every: int = 1000
    patience: int = 10
    grayscale: float = (
        0.0  # probability of grey training crops (the demo: 0.5, so coat colour matters less)
    )
    flip: float = 0.0  # probability of a mirrored training crop (GenZoo: none); needs a mirror-symmetric body model
    global_orient_weight: float = (
        100.0  # the 9D global-orientation loss term's weight (GenZoo: 100; the demo: 30)
    )
    resume: bool = True
    # size huge builds ViT-H: from `pretrained_backbone` (GenZoo fine-tunes ViTPose-H), or from
    # random weights only when this says so
    from_scratch: bool = False
    # DataLoader worker processes for the training split: -1 takes the step's CPUs minus one
    # (core.regressor.loader.default_num_workers), 0 decodes in the training process
    num_workers: int = -1
    # validation: at most this many val samples, the same ones every run (core.regressor.validation)
    max_val_samples: int = 4096

    _counts = checked(
        "batch_size", "max_steps", "val_every", "patience", "max_val_samples", check=at_least(1)
    )
    _workers = checked("num_workers", check=at_least(-1, " (-1: the step's CPUs minus one)"))
    _lr = checked("lr", "global_orient_weight", check=at_least(0.0))
    _grayscale = checked("grayscale", "flip", check=between(0.0, 1.0))
    _backbone_dir = checked("pretrained_backbone", check=existing_dir)

    @pydantic.model_validator(mode="after")
    def _finite(self):
        """NaN or infinity in a float field is refused by name: a range check lets NaN through, and
        training on it fails (retried) with an error about the lr."""
        for name, value in self:
            if isinstance(value, float) and not math.isfinite(value):
                raise SettingError(
                    f"RegressorTrainConfig.{name} = {value!r}: must be a finite number"
                )
        return self

    @pydantic.model_validator(mode="after")
    def _pretrained_needs_full_size(self):
        if self.pretrained_backbone and self.size == "tiny":  # CheckedFields names the class
            raise ValueError(PRETRAINED_NEEDS_HUGE.format(size=repr(self.size)))
        return self


HUGE_NEEDS_WEIGHTS = (
    "size {size} builds ViT-H, which GenZoo fine-tunes from ViTPose-H: set pretrained_backbone to a "
    "local ViTPose-H folder, or from_scratch: true to train it from random weights"
)
PRETRAINED_NEEDS_HUGE = (
    "pretrained_backbone is a full-size backbone, which size {size} does not build: "
    "set size: huge to train from it, or leave pretrained_backbone empty"
)


def train_augmentation(cfg: RegressorTrainConfig, body_model) -> "Augmentation":
    """The training crops' jitter: ``Augmentation``'s defaults with the run's grey-crop and flip rates
    (flips only for a mirror-symmetric ``body_model``: a ValueError names the model otherwise)."""
    from genzoo_assets.core.body.mirror import checked_reflection
    from genzoo_assets.core.regressor.data import Augmentation

    if not cfg.flip:
        return Augmentation(grayscale=cfg.grayscale)
    reflection = tuple(float(v) for v in checked_reflection(body_model).ravel())
    return Augmentation(grayscale=cfg.grayscale, flip=cfg.flip, reflection=reflection)


def _train_config(cfg: RegressorTrainConfig, num_betas: int, device: str) -> "TrainConfig":
    from genzoo_assets.core.regressor.losses import LossWeights
    from genzoo_assets.core.regressor.model import RegressorConfig
    from genzoo_assets.core.regressor.train import TrainConfig

    huge = cfg.size == "huge" or (cfg.size == "auto" and device.startswith("cuda"))
    if cfg.pretrained_backbone and not huge:
        raise SettingError(
            f"RegressorTrainConfig: {PRETRAINED_NEEDS_HUGE.format(size=f'auto on {device}')}"
        )
    if huge and not cfg.pretrained_backbone and not cfg.from_scratch:
        size = repr(cfg.size) if cfg.size == "huge" else f"auto on {device}"
        raise SettingError(f"RegressorTrainConfig: {HUGE_NEEDS_WEIGHTS.format(size=size)}")
    if huge:
        reg = RegressorConfig(
            backbone=cfg.backbone,
            num_betas=num_betas,
            pretrained_backbone=cfg.pretrained_backbone or None,
        )
    else:
        reg = RegressorConfig.tiny(num_betas, backbone=cfg.backbone)
    lr = cfg.lr or (1e-5 if huge else 2e-3)
    return TrainConfig(
        regressor=reg,
        lr=lr,
        lr_schedule=cfg.lr_schedule,
        batch_size=cfg.batch_size,
        max_steps=cfg.max_steps,
        val_every=cfg.val_every,
        checkpoint_every=cfg.val_every,
        patience=cfg.patience,
        weights=LossWeights(global_orient=cfg.global_orient_weight),
        num_workers=cfg.num_workers,
    )


@dg.asset(deps=[dataset_shards], group_name="training", kinds={"pytorch"}, **GPU_STEP)
@fail_fast_on_input_errors
@on_leased_gpu
def regressor(
    context: dg.AssetExecutionContext, config: RegressorTrainConfig, settings: GenZooSettings
):
    """The GenZoo regressor (ViTPose + HMR2-style head) trained on the synthetic shards only."""
    from genzoo_assets.core.regressor.loader import resolve_num_workers
    from genzoo_assets.core.regressor.train import progress_line, train
    from genzoo_assets.core.regressor.validation import ValidationSplit, bytes_per_sample

    root = settings.root()
    shards, out_dir = (
        webdataset.resolve_export(layout.shards_dir(root)),
        layout.regressor_dir(root),
    )  # one export throughout
    body = settings.body()
    tcfg = _train_config(config, body.num_betas, settings.torch_device())
    hw = tcfg.regressor.image_size
    _require_splits(shards)
    train_data = _train_split(shards, hw, settings.resolution, train_augmentation(config, body))
    val_data = ValidationSplit(
        shards,
        "val",
        max_samples=config.max_val_samples,
        input_hw=hw,
        num_workers=resolve_num_workers(tcfg.num_workers),
    )
    context.log.info(
        f"validation: {len(val_data)} of {val_data.total} val samples, "
        f"{bytes_per_sample(val_data) / 1e3:.0f} kB each in memory"
    )

    def progress(step: int, total: int, metrics: dict) -> None:
        context.log.info(progress_line(step, total, metrics))

    result = train(
        tcfg, train_data, val_data, body, out_dir, progress=progress, resume=config.resume
    )
    if result.best_step <= 0:
        raise ValueError(
            f"regressor: {result.steps} training steps never beat the untrained model's validation "
            f"keypoint loss ({result.best_val_loss:.4g}); {result.checkpoint_path} was not replaced"
        )
    lineage = _record_lineage(shards, out_dir, tcfg, context.run.run_id)
    return dg.MaterializeResult(
        metadata={
            "best_val_keypoint_loss": float(result.best_val_loss),
            "best_step": int(result.best_step),
            "steps": int(result.steps),
            "stopped_early": bool(result.stopped_early),
            "skipped_steps": int(
                result.skipped_steps
            ),  # non-finite gradients: no update (core.regressor.train)
            "checkpoint": dg.MetadataValue.path(str(result.checkpoint_path)),
            "training_samples": lineage,
            "loss_curve": image_markdown(out_dir / "loss_curve.png", "loss curve"),
        }
    )


def _require_splits(shards: Path) -> None:
    """Training needs a train and a val split: say which is empty before any shard is opened."""
    counts = webdataset.read_manifest(shards)["counts"]
    for split in ("train", "val"):
        if not int(counts.get(split, 0)):
            raise InputError(
                f"{shards}: the {split} split of the shard export is empty ({dict(counts)}): "
                "materialise images for more species, then `dataset_shards`"
            )


CACHE_BYTES = 2 << 30  # decode the training split into memory when it fits in 2 GiB


def _train_split(shards: Path, hw, resolution: int, augment: "Augmentation"):
    """Small splits are decoded once (CachedSplit); large ones stream from the tar shards."""
    from genzoo_assets.core.regressor.data import CachedSplit, load_split

    count = int(webdataset.read_manifest(shards)["counts"].get("train", 0))
    if count * resolution * resolution * 3 <= CACHE_BYTES:
        return CachedSplit(shards, "train", input_hw=hw, augment=augment)
    return load_split(shards, "train", input_hw=hw, augment=augment, shuffle=1024)


def _record_lineage(export_dir: Path, out_dir: Path, tcfg: "TrainConfig", run_id: str) -> int:
    """Which shards and catalog rows trained this checkpoint (`regressor/lineage.parquet`)."""
    lineage = read_table(export_dir / webdataset.INDEX).assign(
        export=export_dir.name,
        run_id=run_id,
        checkpoint=str(out_dir / "checkpoint.pt"),
        train_config=json.dumps(tcfg.to_dict(), default=str),
    )
    write_table_atomic(lineage, out_dir / "lineage.parquet")
    return int((lineage["split"] == "train").sum())
