"""The regressor's training data pipeline with 0 and N DataLoader workers, the validation split's
memory before and after, and a ViT-H training step's throughput with the data loader.

Builds a synthetic export in a temporary folder: ``--samples`` posed procedural bodies (the test
suite's ``synthetic.make_samples``) drawn at ``--resolution`` px over smooth noise (so the JPEGs
cost what a textured image costs to decode), exported by ``export_shards`` as GenZoo's WebDataset
(``--per-shard`` samples a shard). Then, interleaved ``--repeats`` times:

1. Pipeline: one epoch of the streaming training split (``data.load_split`` with the trainer's
   augmentation) through ``loader.make_loader`` at 0 workers and at ``--workers`` (default: this
   process's CPUs minus one, as the trainer), in samples/s (medians), and their ratio.
2. Validation memory: bytes per sample held as float32 crops (what the asset kept before:
   ``materialize(load_split(...))``) and as ``validation.ValidationSplit``'s uint8 crops, and what
   each costs for the val split of a 1 M export (100 k samples; ValidationSplit keeps 4,096).
3. ``--step``: a ViT-H training step (real width: hidden 1280, 16 heads, mlp 5120, 256×192;
   ``--layers`` deep, 32 with ``--full``) with HMR2's head, batches from the N-worker loader,
   through ``train.backward_pass`` and AdamW, bf16 autocast on CUDA (the trainer's), in samples/s
   over ``--steps`` steps after one warm-up step.

Prints the CPU count, load average and device first. Run:
.venv/bin/python bench/train_loader.py [--samples 256] [--resolution 1024] [--workers N]
    [--step [--layers 2 | --full]] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's synthetic data

VAL_OF_1M = 100_000  # a 1 M export's val split at val_fraction 0.1


def build_export(root: Path, samples: int, resolution: int, per_shard: int) -> Path:
    """A WebDataset export of ``samples`` synthetic samples at ``resolution`` px."""
    from genzoo_assets.core import layout
    from genzoo_assets.core.body import procedural_body_model
    from genzoo_assets.core.dataset.webdataset import export_shards
    from genzoo_assets_tests.core.regressor.synthetic import RES, make_samples

    body = procedural_body_model()
    rows = make_samples(body, root, n=samples)
    k = resolution / RES
    rng = np.random.default_rng(0)
    for i, row in rows.iterrows():
        path = root / row["image_path"]
        small = cv2.imread(str(path))
        big = cv2.resize(small, (resolution, resolution), interpolation=cv2.INTER_LINEAR)
        noise = cv2.resize(
            rng.integers(0, 256, (resolution // 16, resolution // 16, 3), dtype=np.uint8),
            (resolution, resolution),
            interpolation=cv2.INTER_CUBIC,
        )
        cv2.imwrite(
            str(path), cv2.addWeighted(big, 0.7, noise, 0.3, 0), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
        rows.at[i, "keypoints_2d"] = [v * k for v in row["keypoints_2d"]]
        rows.at[i, "bbox"] = [v * k for v in row["bbox"]]
        rows.at[i, "mask_area"] = int(row["mask_area"] * k * k)
        rows.at[i, "resolution"] = resolution
    out = layout.shards_dir(root)
    export_shards(
        rows, root, out, val_fraction=0.25, maxcount=per_shard, camera_version="v1", body_model=body
    )
    return out


def epoch_rate(split, workers: int, batch: int) -> float:
    """Samples per second of one epoch of ``split`` through the trainer's DataLoader."""
    from genzoo_assets.core.regressor.loader import make_loader

    t0, n = time.perf_counter(), 0
    for b in make_loader(split, batch, True, workers, seed=0):
        n += len(b["sample_id"])
    return n / (time.perf_counter() - t0)


def step_rate(shards: Path, args, workers: int, hw) -> tuple[float, str]:
    """Samples per second of ViT-H training steps fed by the N-worker loader."""
    from accelerate import Accelerator

    from genzoo_assets.core.body import procedural_body_model
    from genzoo_assets.core.regressor.data import Augmentation, load_split
    from genzoo_assets.core.regressor.loader import make_loader
    from genzoo_assets.core.regressor.losses import LossWeights
    from genzoo_assets.core.regressor.model import RegressorConfig, build_regressor
    from genzoo_assets.core.regressor.train import backward_pass

    cuda = args.device == "cuda"
    accelerator = Accelerator(mixed_precision="bf16" if cuda else "no", cpu=not cuda)
    body = procedural_body_model()
    config = RegressorConfig(num_betas=body.num_betas, num_layers=32 if args.full else args.layers)
    model = build_regressor(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=1e-4)
    split = load_split(shards, "train", input_hw=hw, augment=Augmentation(), shuffle=64)
    loader = make_loader(split, args.step_batch, True, workers, seed=0, pin_memory=cuda)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    body = body.to(accelerator.device)
    done, t0 = -1, 0.0
    while done < args.steps:
        for batch in loader:
            backward_pass(model, batch, body, LossWeights(), optimizer, accelerator)
            optimizer.step()
            if cuda:
                torch.cuda.synchronize()
            done += 1
            if done == 0:  # after the warm-up step
                t0 = time.perf_counter()
            if done >= args.steps:
                break
    rate = args.steps * args.step_batch / (time.perf_counter() - t0)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return rate, f"{config.num_layers} layers, {params:.0f} M parameters"


def main() -> int:
    from genzoo_assets.core.regressor.crop import INPUT_HW
    from genzoo_assets.core.regressor.data import Augmentation, load_split, materialize
    from genzoo_assets.core.regressor.loader import available_cpus, default_num_workers
    from genzoo_assets.core.regressor.validation import ValidationSplit, bytes_per_sample

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--per-shard", type=int, default=32)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument(
        "--workers", type=int, default=None, help="default: this process's CPUs minus one"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--step", action="store_true", help="also time ViT-H training steps")
    ap.add_argument("--layers", type=int, default=2, help="ViT-H depth for --step (CPU)")
    ap.add_argument("--full", action="store_true", help="ViT-H at its full 32 layers (a GPU)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--step-batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    for name in (
        "samples",
        "resolution",
        "per_shard",
        "batch",
        "repeats",
        "layers",
        "steps",
        "step_batch",
    ):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    workers = default_num_workers() if args.workers is None else args.workers
    if workers < 1:
        ap.error(
            f"--workers must be >= 1 to compare with 0 (this process may use {available_cpus()} CPUs)"
        )
    hw = INPUT_HW
    print(
        f"CPUs available {available_cpus()}, load average {os.getloadavg()[0]:.2f}, torch threads "
        f"{torch.get_num_threads()}, device {args.device}"
        + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else "")
    )
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        shards = build_export(Path(tmp), args.samples, args.resolution, args.per_shard)
        print(
            f"export: {args.samples} samples at {args.resolution} px in {time.perf_counter() - t:.1f} s"
        )
        split = load_split(shards, "train", input_hw=hw, augment=Augmentation(), shuffle=64)
        rates = {0: [], workers: []}
        for _ in range(args.repeats):
            for w in rates:
                rates[w].append(epoch_rate(split, w, args.batch))
        r0, rn = statistics.median(rates[0]), statistics.median(rates[workers])
        print(
            f"training data pipeline ({hw[0]}x{hw[1]} crops of {args.resolution} px JPEGs, batch "
            f"{args.batch}, median of {args.repeats}): 0 workers {r0:.1f} samples/s, {workers} workers "
            f"{rn:.1f} samples/s, ratio {rn / r0:.2f}x"
        )
        old = bytes_per_sample(materialize(load_split(shards, "val", input_hw=hw)))
        val = ValidationSplit(shards, "val", input_hw=hw, num_workers=workers)
        new = bytes_per_sample(val)
        print(
            f"validation split in memory: float32 crops {old / 1e3:.1f} kB/sample, uint8 "
            f"{new / 1e3:.1f} kB/sample ({old / new:.2f}x less); for a 1 M export's {VAL_OF_1M:,} val "
            f"samples: before {VAL_OF_1M * old / 1e9:.1f} GB, after (4,096 kept) {4096 * new / 1e9:.2f} GB"
        )
        if args.step:
            rate, what = step_rate(shards, args, workers, hw)
            print(
                f"ViT-H training step ({what}, batch {args.step_batch}, {workers} workers, "
                f"{'bf16 autocast' if args.device == 'cuda' else 'float32'}): {rate:.2f} samples/s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
