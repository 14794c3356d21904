"""Throughput and model FLOP utilisation (MFU) of the image backend, per speed setting, side by side.

    python bench/flux_gpu.py --random-weights                 # real architectures, random weights
    python bench/flux_gpu.py --random-weights --family qwenimage
    python bench/flux_gpu.py --base FLUX.1-dev/ --canny xlabs-canny/ --depth xlabs-depth/   # real weights
    python bench/flux_gpu.py --tiny                           # tiny random models on CPU (smoke test)

``--random-weights`` builds FLUX.1-dev + the XLabs canny and depth ControlNets + T5-XXL + CLIP-L +
the 16-channel VAE (or Qwen-Image + ControlNet-Union + Qwen2.5-VL-7B) from the configs in
``genzoo_assets/core/imagegen/configs/``, on the device, no download, and runs the project's own
generator (``core/imagegen/flux.py``) on them. On CUDA: full depth, 1024², 28 steps, batch 1, 4, 8,
every setting. On a CPU: the same widths with ``--layers 1`` (one block of each network), 1024²,
1 step, batch 1, the notebook and default settings (minutes per call on two cores).

Settings (``core/imagegen/speed.py``): ``notebook`` = GenZoo's (deterministic, math-only SDPA, TF32
off); ``default`` = ours (flash/efficient SDPA, TF32, VAE slicing); opt-ins ``compile-regional``,
``compile-full``; lossy opt-ins ``fp8-storage``, ``vae-tiling``. Columns: images per GPU-hour,
seconds per image, MFU, the mean alignment score of the images (meaningful with real weights only:
random weights draw noise) and the mean absolute pixel difference of the first image from the
default setting's (same seed: 0 for a bit-exact setting).

FLOPs model (forward only, the denoising networks; text encoders and VAE excluded, a few % at 1024²,
so MFU slightly understates the whole pipeline):

    tokens        T = I + L: I = (H/16)·(W/16) image tokens, L text tokens
    per network   F = Σ 2·n_in·n_out·rows over the Linear layers of its blocks + 4·T²·d·B
    FLUX-dev      steps · (F_transformer + F_canny + F_depth)       (guidance-distilled: one pass)
    Qwen-Image    steps · (2·F_transformer + 2·F_union)             (true CFG: two transformer passes;
                                                                    the union net runs once per control)

rows = the tokens a Linear sees: 1 for the AdaLN modulation (one conditioning vector per image), L
for a double-stream block's text stream, I for its image stream, T in a single-stream block; d =
hidden width, B = number of blocks; 4·T²·d counts QKᵀ and attention·V of the joint attention.
(Counting every Linear weight for every token, as 2·P·T does, overstates FLUX by 1.7×: a token
passes through one stream of a double block, and the modulation weights see one vector.) For
FLUX.1-dev + two XLabs ControlNets at 1024² with L = 512: T = 4608, 74.4 TFLOP per transformer step
+ 2 × 2.61 per ControlNet step, so 28 steps ≈ 2.23 PFLOP per image. MFU = images/s × FLOPs per
image ÷ peak (``--peak-tflops`` or the table).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.notes import heartbeat, note  # noqa: E402 - after the path insert

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

SETTINGS = {  # name -> SpeedOptions fields; the ones that change modules last (one build each)
    "notebook": {"reproduce_notebook": True},
    "default": {},
    "vae-tiling": {"vae_tiling": True},
    "compile-regional": {"compile": "regional"},
    "compile-full": {"compile": "full"},
    "fp8-storage": {"fp8_storage": True},
}


def peak_for(device_name: str) -> float | None:
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return PEAK_BF16_TFLOPS[key]
    return None


# Linear layers that do not see every token of the joint sequence (diffusers' module names):
# the AdaLN modulation maps the one conditioning vector per image; in a double-stream block the
# text stream's layers see the text tokens and every other layer the image tokens.
MODULATION = ("norm1", "norm1_context", "norm", "img_mod", "txt_mod")
TEXT_STREAM = ("add_q_proj", "add_k_proj", "add_v_proj", "to_add_out", "ff_context", "txt_mlp")


def linear_rows(name: str, single: bool, image_tokens: int, text_tokens: int) -> int:
    """Rows (tokens per image) the Linear called ``name`` inside a block multiplies."""
    parts = name.split(".")
    if parts[0] in MODULATION:
        return 1
    if single:
        return image_tokens + text_tokens
    return text_tokens if any(p in TEXT_STREAM for p in parts) else image_tokens


def network_flops(model, image_tokens: int, text_tokens: int) -> float:
    """Forward FLOPs per image of the transformer blocks of a FLUX or Qwen-Image network (or
    ControlNet): each Linear at the rows it sees, plus joint attention over all tokens."""
    import torch

    tokens = image_tokens + text_tokens
    flops, blocks = 0.0, 0
    for attr, single in (("transformer_blocks", False), ("single_transformer_blocks", True)):
        for block in getattr(model, attr, []):
            blocks += 1
            for name, m in block.named_modules():
                if isinstance(m, torch.nn.Linear):
                    rows = linear_rows(name, single, image_tokens, text_tokens)
                    flops += 2.0 * m.in_features * m.out_features * rows
    width = model.config.num_attention_heads * model.config.attention_head_dim
    return flops + 4.0 * tokens**2 * width * blocks


def text_tokens(gen, prompt: str) -> int:
    """Text tokens the denoiser sees: FLUX pads T5 to max_sequence_length; Qwen uses the prompt."""
    if gen.family_name != "qwenimage":
        return gen.max_sequence_length
    pipe = gen.pipeline
    ids = pipe.tokenizer(pipe.prompt_template_encode.format(prompt)).input_ids
    return min(len(ids) - pipe.prompt_template_encode_start_idx, gen.max_sequence_length)


def flops_per_image(gen, height: int, width: int, prompt: str = "") -> float:
    pipe = gen.pipeline
    image, text = (height // 16) * (width // 16), text_tokens(gen, prompt)
    nets = list(pipe.controlnet.nets)
    if gen.family_name == "qwenimage":  # true CFG; the union net runs once per control image
        per_step = 2 * network_flops(pipe.transformer, image, text) + 2 * network_flops(
            nets[0], image, text
        )
    else:
        per_step = network_flops(pipe.transformer, image, text) + sum(
            network_flops(n, image, text) for n in nets
        )
    return gen.steps * per_step


PROMPT = "a photo of a dog standing on grass"


def _requests(n: int, size: int):
    import numpy as np

    from genzoo_assets.core.imagegen.base import GenerationRequest

    yy, xx = np.mgrid[:size, :size]
    mask = ((xx - size / 2) / (0.35 * size)) ** 2 + ((yy - size / 2) / (0.2 * size)) ** 2 < 1
    canny = np.zeros((size, size), np.uint8)
    canny[1:][mask[1:] != mask[:-1]] = 255
    depth = (mask * 200).astype(np.uint8)
    rgb = np.repeat((mask * 160).astype(np.uint8)[..., None], 3, -1)
    return [GenerationRequest(f"bench.{i}", PROMPT, canny, depth, mask, rgb, i) for i in range(n)]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _free(device: str) -> None:
    import torch

    from genzoo_assets.core import residency

    residency.release_all()
    gc.collect()
    torch._dynamo.reset()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _parse(argv):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--random-weights",
        action="store_true",
        help="real architectures from the repository's configs, random weights, on the device",
    )
    ap.add_argument("--family", choices=("flux", "qwenimage"), default="flux")
    ap.add_argument(
        "--layers",
        type=int,
        default=None,
        help="blocks per network (default: all on CUDA, 1 on CPU)",
    )
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--base", help="base pipeline folder or cached HF repo id (real weights)")
    ap.add_argument("--canny", help="canny ControlNet folder (Qwen-Image: the ControlNet-Union)")
    ap.add_argument("--depth", help="depth ControlNet folder (Qwen-Image: omit)")
    ap.add_argument("--tiny", action="store_true", help="tiny random models on CPU (smoke test)")
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=None)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    ap.add_argument("--resolution", type=int, default=None, help="default 1024 (64 with --tiny)")
    ap.add_argument("--steps", type=int, default=None, help="default 28 on CUDA, 1 on CPU")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per batch size")
    ap.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one untimed call per batch size first (default: on CUDA only)",
    )
    ap.add_argument("--peak-tflops", type=float, default=None, help="default from a GPU table")
    return ap, ap.parse_args(argv)


def main(argv=None) -> int:
    ap, args = _parse(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch

    from genzoo_assets.core.imagegen import alignment_score, make_generator
    from genzoo_assets.core.imagegen.flux import DiffusersControlNetGenerator
    from genzoo_assets.core.imagegen.random_weights import random_generator

    modes = [args.random_weights, args.tiny, bool(args.base)]
    if sum(modes) != 1:
        ap.error("give exactly one of --random-weights, --tiny, or --base/--canny/--depth")
    device = args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    cuda = device.startswith("cuda")
    if args.base and not cuda:
        print("CUDA is not available: real weights need a GPU (--random-weights runs on a CPU)")
        return 2
    settings = args.settings or (list(SETTINGS) if cuda else ["notebook", "default"])
    batch_sizes = args.batch_sizes or ([1, 4, 8] if cuda else [1])
    steps = args.steps or (28 if cuda else (2 if args.tiny else 1))
    res = args.resolution or (64 if args.tiny else 1024)
    repeats = args.repeats or (2 if cuda else 1)
    warmup = cuda if args.warmup is None else args.warmup
    layers = args.layers if args.layers is not None else (None if cuda else 1)
    dtype = torch.bfloat16 if (cuda or args.random_weights) else torch.float32
    common = dict(device=device, dtype=dtype, steps=steps, resolution=res)

    tmp = None
    if args.tiny:
        from genzoo_assets_tests.fixtures.tiny_flux import build_tiny_flux

        tmp = tempfile.TemporaryDirectory()
        paths = build_tiny_flux(tmp.name)
        args.base, args.canny, args.depth = paths.base, paths.canny, paths.depth
        common["max_sequence_length"] = 64
    name = f"{args.family}_controlnet"

    def folders():
        if args.family == "qwenimage":
            return dict(base_model=args.base, controlnet_union=args.canny)
        return dict(base_model=args.base, canny_controlnet=args.canny, depth_controlnet=args.depth)

    shared = None  # a random-weight pipeline reused by settings that do not change its modules
    device_name = torch.cuda.get_device_name(device) if cuda else "cpu"
    peak = args.peak_tflops or (peak_for(device_name) if cuda else None)
    rows, first_images = [], {}
    for setting in settings:
        speed = SETTINGS[setting]
        mutates = bool(speed.get("compile") or speed.get("fp8_storage"))
        options = dict(common, batch_size=batch_sizes[0], speed=speed)
        note(f"{setting}: building the pipeline")
        start = time.perf_counter()
        if mutates:  # compiled or fp8-cast modules: a fresh pipeline, the previous one freed first
            shared = None
            _free(device)
        if args.random_weights:
            if mutates or shared is None:
                gen = random_generator(args.family, layers=layers, **options)
                shared = None if mutates else gen.pipeline
            else:
                gen = DiffusersControlNetGenerator.with_pipeline(args.family, shared, {}, **options)
        else:
            gen = make_generator(name, **folders(), **options)
            gen.pipeline  # noqa: B018 - load (process-resident) before timing
        build_s = time.perf_counter() - start
        for bs in batch_sizes:
            gen.batch_size = bs
            reqs = _requests(bs, res)
            calls = f"{repeats} timed call(s)" + (" after a warm-up" if warmup else "")
            note(f"{setting}, batch {bs}: {calls}")
            try:
                with heartbeat(f"{setting}, batch {bs}"):
                    if warmup:
                        gen.generate(reqs)  # kernels, allocator, compilation
                    _sync(device)
                    start = time.perf_counter()
                    for _ in range(repeats):
                        images = gen.generate(reqs)
                    _sync(device)
                    elapsed = time.perf_counter() - start
            except torch.OutOfMemoryError:
                note(f"{setting}, batch {bs}: out of memory")
                rows.append((setting, bs, None, None, None, None, None, build_s))
                torch.cuda.empty_cache()
                continue
            note(f"{setting}, batch {bs}: {elapsed:.1f} s")
            ips = bs * repeats / elapsed
            fpi = flops_per_image(gen, res, res, PROMPT)
            achieved = ips * fpi / 1e12
            align = float(
                np.mean(
                    [
                        alignment_score(im, reqs[0].canny, reqs[0].mask)["alignment_score"]
                        for im in images
                    ]
                )
            )
            first_images.setdefault(setting, np.asarray(images[0]).astype(np.int16))
            rows.append(
                (
                    setting,
                    bs,
                    ips,
                    fpi / 1e12,
                    achieved,
                    achieved / peak if peak else None,
                    align,
                    build_s,
                )
            )
            build_s = 0.0  # built once per setting
        del gen
        if mutates:
            _free(device)

    depth = "full depth" if layers is None else f"{layers} block(s) per network"
    weights = "random weights, " + depth if args.random_weights else "weights from folders"
    print(
        f"{args.family}  device: {device_name}  {res}x{res}  steps: {steps}  {weights}  "
        f"dtype: {str(dtype).removeprefix('torch.')}  "
        f"peak: {f'{peak:.0f} TFLOP/s' if peak else 'n/a'}"
    )
    head = (
        f"{'setting':<17} {'batch':>5} {'images/GPU-h':>12} {'s/image':>9} {'TFLOP/img':>10} "
        f"{'TFLOP/s':>8} {'MFU':>6} {'align':>6} {'Δpx':>6} {'build s':>8}"
    )
    print(head)
    ref = first_images.get("default")
    for setting, bs, ips, tfi, ach, mfu, align, build_s in rows:
        diff = None
        if ref is not None and setting in first_images:
            diff = float(np.abs(first_images[setting] - ref).mean())
        if ips is None:
            print(f"{setting:<17} {bs:>5} {'out of memory':>12}")
            continue
        print(
            f"{setting:<17} {bs:>5} {ips * 3600:>12.1f} {1 / ips:>9.3f} {tfi:>10.4g} {ach:>8.3g} "
            f"{(f'{100 * mfu:.1f}%' if mfu is not None else 'n/a'):>6} {align:>6.3f} "
            f"{(f'{diff:.2f}' if diff is not None else '-'):>6} {build_s:>8.1f}"
        )
    best = max(
        (r for r in rows if r[2] is not None and r[0] == "default"),
        key=lambda r: r[2],
        default=None,
    )
    if best is not None:
        print(f"best default batch size: {best[1]} ({best[2] * 3600:.1f} images/GPU-h)")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
