"""Throughput and model FLOP utilisation (MFU) of the FLUX + 2 ControlNet image backend.

    python bench/flux_gpu.py --base FLUX.1-dev/ --canny xlabs-canny/ --depth xlabs-depth/   # CUDA, real weights
    python bench/flux_gpu.py --tiny                                                            # CPU smoke test

FLOPs model (forward only; FLUX-dev is guidance-distilled, so one transformer pass per step):

    tokens        T = (H/16)·(W/16) image tokens + L text tokens (L = max_sequence_length)
    per network   F = 2·P·T + 4·T²·d·B
    per image     steps · (F_transformer + F_canny + F_depth)

P = weights of the network's Linear layers inside its transformer blocks (each weight is one
multiply-add per token; embedders and norms are negligible), d = hidden width (heads × head dim),
B = number of blocks (double + single); 4·T²·d counts QKᵀ and attention·V. Text encoders and the
VAE decoder are excluded (a few % at 1024²), so MFU here slightly understates the whole pipeline.
For FLUX.1-dev (11.9 B parameters, 57 blocks, d = 3072) + two XLabs ControlNets (0.74 B, 2 blocks each)
at 1024² with L = 512: T = 4608, 124 TFLOP per transformer step + 2 × 6.8 per ControlNet step, so
28 steps ≈ 3.85 PFLOP per image. MFU = images/s × FLOPs per image ÷ peak. Peak: ``--peak-tflops``
or the dense bf16 table below.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEAK_BF16_TFLOPS = {  # dense (no sparsity) tensor-core bf16
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
    "RTX 6000 Ada": 364.0,
    "B200": 2250.0,
}


def peak_for(device_name: str) -> float | None:
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return PEAK_BF16_TFLOPS[key]
    return None


def network_flops(model, tokens: int) -> float:
    import torch

    blocks = list(model.transformer_blocks) + list(model.single_transformer_blocks)
    params = sum(
        m.weight.numel() for b in blocks for m in b.modules() if isinstance(m, torch.nn.Linear)
    )
    width = model.config.num_attention_heads * model.config.attention_head_dim
    return 2.0 * params * tokens + 4.0 * tokens**2 * width * len(blocks)


def flops_per_image(gen, height: int, width: int) -> float:
    pipe = gen.pipeline
    tokens = (height // 16) * (width // 16) + gen.max_sequence_length
    total = network_flops(pipe.transformer, tokens) + sum(
        network_flops(n, tokens) for n in pipe.controlnet.nets
    )
    return gen.steps * total


def _requests(n: int, size: int):
    import numpy as np

    from genzoo_assets.core.imagegen.base import GenerationRequest

    yy, xx = np.mgrid[:size, :size]
    mask = ((xx - size / 2) / (0.35 * size)) ** 2 + ((yy - size / 2) / (0.2 * size)) ** 2 < 1
    canny = np.zeros((size, size), np.uint8)
    canny[1:][mask[1:] != mask[:-1]] = 255
    depth = (mask * 200).astype(np.uint8)
    rgb = np.repeat((mask * 160).astype(np.uint8)[..., None], 3, -1)
    return [
        GenerationRequest(
            f"bench.{i}", "a photo of a dog standing on grass", canny, depth, mask, rgb, i
        )
        for i in range(n)
    ]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--base",
        help="FLUX base pipeline folder or cached HF repo id (e.g. black-forest-labs/FLUX.1-dev)",
    )
    ap.add_argument("--canny", help="canny ControlNet folder or cached repo id")
    ap.add_argument("--depth", help="depth ControlNet folder or cached repo id")
    ap.add_argument("--tiny", action="store_true", help="tiny random models on CPU (smoke test)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--resolution", type=int, default=None, help="default 1024 (64 with --tiny)")
    ap.add_argument("--steps", type=int, default=None, help="default 28 (2 with --tiny)")
    ap.add_argument("--repeats", type=int, default=2, help="timed pipeline calls per batch size")
    ap.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="peak of the device; default from a table of GPUs",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from genzoo_assets.core.imagegen.flux import FluxControlNetGenerator

    if args.tiny:
        from genzoo_assets_tests.fixtures.tiny_flux import build_tiny_flux

        tmp = tempfile.TemporaryDirectory()
        paths = build_tiny_flux(tmp.name)
        base, canny, depth, device = paths.base, paths.canny, paths.depth, "cpu"
        res, steps, msl = args.resolution or 64, args.steps or 2, 64
    else:
        if not (args.base and args.canny and args.depth):
            ap.error("give --base, --canny and --depth (real weights), or --tiny")
        if not torch.cuda.is_available():
            print(
                "CUDA is not available: the real-weight benchmark needs a GPU (use --tiny for a CPU smoke test)"
            )
            return 2
        base, canny, depth, device = args.base, args.canny, args.depth, "cuda"
        res, steps, msl = args.resolution or 1024, args.steps or 28, None

    device_name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = args.peak_tflops or (peak_for(device_name) if device == "cuda" else None)
    rows = []
    for bs in args.batch_sizes:
        gen = FluxControlNetGenerator.from_pretrained(
            base,
            canny,
            depth,
            device=device,
            batch_size=bs,
            steps=steps,
            resolution=res,
            max_sequence_length=msl,
        )
        reqs = _requests(bs, res)
        gen.generate(reqs)  # warm-up: loading, kernels, allocator
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.repeats):
            gen.generate(reqs)
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        ips = bs * args.repeats / elapsed
        fpi = flops_per_image(gen, res, res)
        achieved = ips * fpi / 1e12
        rows.append((bs, ips, 1 / ips, fpi / 1e12, achieved, achieved / peak if peak else None))
        del gen
        if device == "cuda":
            torch.cuda.empty_cache()

    print(
        f"device: {device_name}   resolution: {res}x{res}   steps: {steps}   "
        f"peak: {f'{peak:.0f} TFLOP/s' if peak else 'n/a (pass --peak-tflops)'}"
    )
    print(
        f"{'batch':>5} {'images/s':>10} {'s/image':>9} {'TFLOP/image':>12} {'TFLOP/s':>9} {'MFU':>7}"
    )
    for bs, ips, spi, tfi, ach, mfu in rows:
        print(
            f"{bs:>5} {ips:>10.3f} {spi:>9.3f} {tfi:>12.4g} {ach:>9.3g} "
            f"{(f'{100 * mfu:.1f}%' if mfu is not None else 'n/a'):>7}"
        )
    if len(rows) > 1:
        print(
            f"batch {rows[-1][0]} vs batch {rows[0][0]}: {rows[-1][1] / rows[0][1]:.2f}x images/s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
