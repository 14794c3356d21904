"""The fixed cost of a GPU image step: what start-up and loading the paper's pipeline cost, as a
share of the step, at one partition a step and at ``MODEL_PARTITIONS_PER_RUN``.

    python bench/fixed_cost.py --image-seconds 5 --image-source "an assumed H100 time"
    python bench/fixed_cost.py --measure-image           # on a GPU: bench/flux_gpu.py's time

Measured here, in this run:

- start-up: a fresh interpreter importing what an ``images`` step imports before it loads FLUX
  (the code location, torch, diffusers' FLUX ControlNet pipeline, transformers' T5 and CLIP);
- load throughput: reading back, with ``safetensors`` onto the device, a file the size of one real
  layer (a FLUX.1-dev double-stream block from the repository's config, bf16, random values),
  written to ``--dir`` and dropped from the page cache first, so the read comes from storage;
- per image: ``--measure-image`` runs ``bench/flux_gpu.py --random-weights`` (default settings,
  batch 1; full depth on CUDA), else ``--image-seconds`` is used and its ``--image-source``
  printed. On a CPU neither is a GPU's time.

The fraction is ``(start + load) / (start + load + N · samples · t_image)`` with the load of
``--model-gb`` (FLUX.1-dev + T5-XXL + CLIP-L + VAE + two XLabs ControlNets in bf16, ~34 GB) at the
measured throughput; the target is ≤ 5 % (issue 24).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEP_IMPORTS = (
    "import genzoo_assets.definitions, torch, diffusers; "
    "from diffusers import FluxControlNetPipeline, FluxMultiControlNetModel; "
    "from transformers import T5EncoderModel, CLIPTextModel"
)
FLUX_CONFIG = ROOT / "genzoo_assets" / "core" / "imagegen" / "configs" / "flux1_dev.json"
PAPER_GB = 34.0
TARGET = 0.05


def process_start_seconds(repeats: int) -> list[float]:
    """Seconds a fresh interpreter takes to import the step's modules, ``repeats`` times."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", STEP_IMPORTS], check=True, env=env, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return times


def flux_block_state() -> dict:
    """A FLUX.1-dev double-stream block's tensors (names and shapes from diffusers' class, sizes
    from the repository's config), bf16, random: one real layer, ~0.68 GB."""
    import torch
    from diffusers.models.transformers.transformer_flux import FluxTransformerBlock

    cfg = json.loads(FLUX_CONFIG.read_text())["transformer"]
    heads, head_dim = cfg["num_attention_heads"], cfg["attention_head_dim"]
    with torch.device("meta"):
        block = FluxTransformerBlock(heads * head_dim, heads, head_dim)
    generator = torch.Generator().manual_seed(0)
    return {
        name: torch.randn(t.shape, generator=generator, dtype=torch.bfloat16)
        for name, t in block.state_dict().items()
    }


def load_gbps(directory: str, device: str) -> tuple[float, int]:
    """GB/s reading one real layer back from storage with safetensors onto ``device``."""
    from bench.text_gpu import read_back_gbps

    return read_back_gbps(flux_block_state(), device, directory)


def measured_image_seconds() -> float:
    """Seconds an image from ``bench/flux_gpu.py --random-weights`` (default settings, batch 1)."""
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "flux_gpu.py"),
            "--random-weights",
            "--settings",
            "default",
            "--batch-sizes",
            "1",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return image_seconds_from(out)


def image_seconds_from(flux_gpu_output: str) -> float:
    """The s/image column of ``bench/flux_gpu.py``'s first ``default`` row at batch 1."""
    row = re.search(r"^default\s+1\s+[\d.]+\s+([\d.]+)\s", flux_gpu_output, re.MULTILINE)
    if row is None:
        raise RuntimeError(f"bench/flux_gpu.py printed no 'default' row:\n{flux_gpu_output}")
    return float(row.group(1))


def fraction(start_s: float, load_s: float, partitions: int, samples: int, t_image: float) -> float:
    fixed = start_s + load_s
    return fixed / (fixed + partitions * samples * t_image)


def fixed_cost_line(
    start_s: float,
    gbps: float,
    layer_bytes: int,
    t_image: float,
    image_source: str,
    model_gb: float,
    samples: int,
    per_run: int,
    device: str,
) -> str:
    load_s = model_gb / gbps
    one = fraction(start_s, load_s, 1, samples, t_image)
    many = fraction(start_s, load_s, per_run, samples, t_image)
    return (
        f"fixed cost ({device}): start-up {start_s:.1f} s + load {model_gb:.1f} GB at {gbps:.2f} "
        f"GB/s ({layer_bytes / 1e9:.2f} GB layer read back) = {start_s + load_s:.1f} s; "
        f"{t_image:.2f} s an image ({image_source}) x {samples} a partition -> "
        f"{one:.1%} at 1 partition a step, {many:.1%} at {per_run} (target <= {TARGET:.0%})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    timing = parser.add_mutually_exclusive_group(required=True)
    timing.add_argument("--measure-image", action="store_true", help="run bench/flux_gpu.py")
    timing.add_argument("--image-seconds", type=float, help="seconds an image, from elsewhere")
    parser.add_argument("--image-source", default="", help="where --image-seconds comes from")
    parser.add_argument("--model-gb", type=float, default=PAPER_GB, help="bytes the step loads")
    parser.add_argument("--samples", type=int, default=64, help="samples a partition")
    parser.add_argument("--start-repeats", type=int, default=3, help="fresh interpreters timed")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the layer is written")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.image_seconds is not None and (args.image_seconds <= 0 or not args.image_source):
        parser.error("--image-seconds must be positive and come with --image-source")

    from genzoo_assets.core.device import resolve_device
    from genzoo_assets.defs.partition_range import MODEL_PARTITIONS_PER_RUN

    device = resolve_device(args.device)
    starts = process_start_seconds(args.start_repeats)
    start_s = statistics.median(starts)
    print(
        f"start-up: {', '.join(f'{s:.1f}' for s in starts)} s (median {start_s:.1f})",
        file=sys.stderr,
    )
    gbps, layer_bytes = load_gbps(args.dir, device)
    if args.measure_image:
        t_image = measured_image_seconds()
        source = f"bench/flux_gpu.py --random-weights on {device}"
        if not device.startswith("cuda"):
            source += ", one block per network: not the full pipeline's time"
    else:
        t_image, source = args.image_seconds, f"given: {args.image_source}"
    print(
        fixed_cost_line(
            start_s,
            gbps,
            layer_bytes,
            t_image,
            source,
            args.model_gb,
            args.samples,
            MODEL_PARTITIONS_PER_RUN,
            device,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
