"""Throughput of the text backends (VLM captioner, LLM prompter) without their weights.

    python bench/text_gpu.py --random-weights --layers 2      # CPU: real width, truncated depth
    python bench/text_gpu.py --random-weights --full          # a GPU: full depth, batch 8

Qwen2.5-VL-7B-Instruct (the captioner, role ``captioner``), Qwen3-VL-8B-Instruct (the captioner
SAM 3D Animal's Herd3D uses, role ``captioner-qwen3-vl``) and Qwen2.5-7B-Instruct (the prompter) are
built from their released configs (``bench/configs/*.json``) in bf16, random-initialised on the
device: no download. Each runs ``generate`` at the stage's real lengths:

- captioner: one 1024² control render through the release's image processor (Qwen2.5-VL:
  max_pixels 12845056, 1036² after rounding to 28 px, 5476 patches, 1369 image tokens after the
  2×2 merge; Qwen3-VL: 16 px patches, 1024² kept, 4096 patches, 1024 image tokens), the chat
  template and ``vlm_question``; greedy, ``max_new_tokens`` (48) tokens forced.
- prompter: the chat template with ``llm_system`` and ``llm_user`` filled for a drawn sample;
  sampled, ``max_new_tokens`` (96) tokens forced.

Text lengths are counted as words and punctuation marks (about one Qwen BPE token each in
English). Without ``--full`` the text model keeps ``--layers`` of its L decoder layers (28; 36 for
Qwen3-VL) and the vision tower the same share of its blocks (``round(layers·32/28)`` of 32;
Qwen3-VL's DeepStack taps scaled to the kept blocks); the same model is timed again with no layers
at all, and full depth is extrapolated linearly: ``t_full = t_0 + (t_n − t_0)·L/n``.

Fixed cost per step (the issue's target: ≤ 5 %): ``(process start + load) / (load + k ·
partition generation)`` with k partitions per load, where process start is a fresh interpreter
importing the code location and transformers' model classes (measured), load = the full-size bf16
weights ÷ the measured read throughput (a safetensors file of the built model written to a temp
folder, evicted from the page cache with ``posix_fadvise`` and read back onto the device), and a
partition is ``--samples`` samples in batches of ``--batch``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.notes import heartbeat, note  # noqa: E402 - after the path insert

CONFIGS = ROOT / "bench" / "configs"
VLM_CONFIG = CONFIGS / "qwen2_5_vl_7b_instruct.json"
QWEN3_VL_CONFIG = CONFIGS / "qwen3_vl_8b_instruct.json"
LLM_CONFIG = CONFIGS / "qwen2_5_7b_instruct.json"
# Qwen/Qwen2.5-VL-7B-Instruct's preprocessor_config.json
VL_PREPROCESSOR = dict(
    min_pixels=3136,
    max_pixels=12845056,
    patch_size=14,
    temporal_patch_size=2,
    merge_size=2,
    image_mean=[0.48145466, 0.4578275, 0.40821073],
    image_std=[0.26862954, 0.26130258, 0.27577711],
)
# Qwen/Qwen3-VL-8B-Instruct's preprocessor_config.json (size counts pixels: 256² to 4096²)
QWEN3_VL_PREPROCESSOR = dict(
    size={"shortest_edge": 65536, "longest_edge": 16777216},
    patch_size=16,
    temporal_patch_size=2,
    merge_size=2,
    image_mean=[0.5, 0.5, 0.5],
    image_std=[0.5, 0.5, 0.5],
)
CHAT_OVERHEAD = {  # tokens the Qwen chat templates add around the messages
    "captioner": len(
        "<|im_start|> system You are a helpful assistant. <|im_end|> <|im_start|> user "
        "<|vision_start|> <|vision_end|> <|im_end|> <|im_start|> assistant".split()
    ),
    # Qwen3-VL's template adds no default system message
    "captioner-qwen3-vl": len(
        "<|im_start|> user <|vision_start|> <|vision_end|> <|im_end|> <|im_start|> assistant".split()
    ),
    "prompter": len(
        "<|im_start|> system <|im_end|> <|im_start|> user <|im_end|> <|im_start|> assistant".split()
    ),
}
VISION_MODELS = {  # captioner roles: (config, image preprocessor)
    "captioner": (VLM_CONFIG, VL_PREPROCESSOR),
    "captioner-qwen3-vl": (QWEN3_VL_CONFIG, QWEN3_VL_PREPROCESSOR),
}
STEP_IMPORTS = (
    "import genzoo_assets.definitions, transformers; "
    "from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2ForCausalLM, "
    "Qwen3VLForConditionalGeneration"
)
TARGET = 0.05


def text_tokens(text: str) -> int:
    """Words and punctuation marks: about one Qwen BPE token each for English prose."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def load_config(path: Path, layers: int | None):
    """The released config; with ``layers`` the text model keeps that many decoder layers and the
    vision tower the same share of its blocks (Qwen2.5-VL: its last kept block does full attention;
    Qwen3-VL: its DeepStack taps move to the same share of the kept blocks). Keys starting with
    ``_`` (the file's notes) are not config values."""
    from transformers import AutoConfig

    values = {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    if layers is None:
        return config
    text = config.get_text_config()
    full = text.num_hidden_layers
    text.num_hidden_layers = layers
    if hasattr(text, "max_window_layers"):
        text.max_window_layers = layers
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = config.layer_types[:layers]
    if getattr(text, "layer_types", None) is not None:
        text.layer_types = text.layer_types[:layers]
    vision = getattr(config, "vision_config", None)
    if vision is not None:
        depth = max(1, round(layers * vision.depth / full))
        if hasattr(vision, "fullatt_block_indexes"):
            vision.fullatt_block_indexes = [depth - 1]
        if getattr(vision, "deepstack_visual_indexes", None):
            vision.deepstack_visual_indexes = sorted(
                {
                    min(depth - 1, round(i * depth / vision.depth))
                    for i in vision.deepstack_visual_indexes
                }
            )
        vision.depth = depth
    return config


def build(path: Path, layers: int | None, device: str):
    """Random bf16 weights, created on ``device`` (no copy from the CPU)."""
    return build_model(load_config(path, layers), device)


def build_model(config, device: str):
    """A model of ``config`` (from :func:`load_config`) with random bf16 weights on ``device``."""
    import torch
    import transformers

    vision_classes = {
        "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
        "qwen3_vl": "Qwen3VLForConditionalGeneration",
    }
    with torch.device(device):
        if config.model_type in vision_classes:
            model_class = getattr(transformers, vision_classes[config.model_type])
            model = model_class._from_config(config, dtype=torch.bfloat16)
        else:
            model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    return model.eval()


def full_size_bytes(path: Path) -> int:
    """bf16 bytes of the released model (counted on the meta device)."""
    import torch

    with torch.device("meta"):
        model = build(path, None, "meta")
    return sum(p.numel() for p in model.parameters()) * torch.finfo(torch.bfloat16).bits // 8


def captioner_inputs(batch: int, image_size: int, device: str, role: str = "captioner"):
    import numpy as np
    import torch
    from PIL import Image
    from transformers import Qwen2VLImageProcessorPil

    from genzoo_assets.core.text.vocabulary import load_data

    path, preprocessor = VISION_MODELS[role]
    config = json.loads(path.read_text())
    processor = Qwen2VLImageProcessorPil(**preprocessor)
    render = Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (image_size, image_size, 3), np.uint8)
    )
    vision = processor(images=[render] * batch, return_tensors="pt")
    grid = vision["image_grid_thw"]
    image_tokens = int(grid[0].prod()) // preprocessor["merge_size"] ** 2
    question = load_data("instructions.yaml")["vlm_question"].format(animal="snow leopard")
    n_text = CHAT_OVERHEAD[role] + text_tokens(question)
    gen = torch.Generator().manual_seed(0)
    text = torch.randint(1000, 150000, (batch, n_text), generator=gen)
    image = torch.full((batch, image_tokens), config["image_token_id"])
    start = torch.full((batch, 1), config["vision_start_token_id"])
    end = torch.full((batch, 1), config["vision_end_token_id"])
    ids = torch.cat([text[:, :8], start, image, end, text[:, 8:]], dim=1)
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "pixel_values": vision["pixel_values"].to(device, torch.bfloat16),
        "image_grid_thw": grid.to(device),
    }, f"{image_tokens} image + {ids.shape[1] - image_tokens} text"


def prompter_inputs(batch: int, device: str):
    import torch

    from genzoo_assets.core.text.llm import chat_messages
    from genzoo_assets.core.text.prompters import PromptInput, draw_setting, setting_slots

    item = PromptInput(
        "Snow leopard", False, None, "The animal is facing left, seen at eye level, standing.", 7
    )
    messages = chat_messages(setting_slots(item, draw_setting(item)))
    n = CHAT_OVERHEAD["prompter"] + sum(text_tokens(m["content"]) for m in messages)
    ids = torch.randint(1000, 150000, (batch, n), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}, str(n)


def timed_generate(model, inputs: dict, new_tokens: int, sample: bool, device: str) -> float:
    import torch

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=sample,
            top_p=0.9 if sample else None,
            temperature=0.7 if sample else None,
            pad_token_id=0,
        )
    sync()
    return time.perf_counter() - start


def strip_layers(model) -> None:
    """Keep embeddings, norms, merger and head only: the cost that does not grow with depth."""
    import torch

    text = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    text.layers = torch.nn.ModuleList()
    model.config.get_text_config().num_hidden_layers = 0
    for cfg in (model.config, model.config.get_text_config()):
        if getattr(cfg, "layer_types", None) is not None:
            cfg.layer_types = []
    visual = getattr(getattr(model, "model", model), "visual", None)
    if visual is not None:
        visual.blocks = torch.nn.ModuleList()
        visual.fullatt_block_indexes = []
        visual.deepstack_visual_indexes = []


def load_throughput(model, device: str) -> tuple[float, int]:
    """GB/s reading the model's weights from a safetensors file not in the page cache."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    return read_back_gbps(state, device)


def read_back_gbps(state: dict, device: str, directory: str | None = None) -> tuple[float, int]:
    """(GB/s, bytes) reading ``state`` back onto ``device`` from a safetensors file written to
    ``directory`` (the system temp dir when None), fsynced and dropped from the page cache first,
    so the read comes from storage. ``state`` is consumed: the caller's reference is the last."""
    import torch
    from safetensors.torch import load_file, save_file

    size = sum(t.numel() * t.element_size() for t in state.values())
    with tempfile.TemporaryDirectory(prefix="read-back-", dir=directory) as tmp:
        path = os.path.join(tmp, "weights.safetensors")
        save_file(state, path)
        state.clear()
        with open(path, "rb") as f:
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        start = time.perf_counter()
        loaded = load_file(path, device=device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        del loaded
    return size / seconds / 1e9, size


def process_start_seconds() -> float:
    """A fresh interpreter importing what a text step imports before it loads a model."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", STEP_IMPORTS], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def bench_role(role: str, args, device: str) -> dict:
    path, new_tokens, sample = (
        (VISION_MODELS[role][0], args.caption_tokens, False)
        if role in VISION_MODELS
        else (LLM_CONFIG, args.prompt_tokens, True)
    )
    layers = None if args.full else args.layers
    full_layers = load_config(path, None).get_text_config().num_hidden_layers
    note(f"{role}: building")
    model = build(path, layers, device)
    note(f"{role}: built")
    inputs, prompt = (
        captioner_inputs(args.batch, args.image_size, device, role)
        if role in VISION_MODELS
        else prompter_inputs(args.batch, device)
    )
    with heartbeat(f"{role}: generating"):
        if device.startswith("cuda"):
            timed_generate(model, inputs, 2, sample, device)  # kernels, allocator, autotuning
        prefill = timed_generate(model, inputs, 1, sample, device)
        total = timed_generate(model, inputs, new_tokens, sample, device)
    note(f"{role}: generated ({prefill:.1f} s prefill, {total:.1f} s in all)")
    gbps, _ = load_throughput(model, device)
    note(f"{role}: read back at {gbps:.2f} GB/s")
    row = dict(role=role, layers=layers or full_layers, prompt=prompt, prefill=prefill, total=total)
    if layers is not None:
        strip_layers(model)
        base = timed_generate(model, inputs, new_tokens, sample, device)
        row["total_full"] = base + (total - base) * full_layers / layers
        row["base"] = base
    else:
        row["total_full"] = total
    row.update(new_tokens=new_tokens, gbps=gbps, bytes_full=full_size_bytes(path))
    del model
    return row


def report(rows: list[dict], start_s: float, args, device: str) -> None:
    depth = "full depth" if args.full else f"{args.layers} layers (28; 36 for Qwen3-VL)"
    print(f"device {device}; bf16 random weights, real width, {depth}; batch {args.batch}")
    print(f"process start (fresh interpreter, step imports): {start_s:.2f} s")
    print(
        f"{'role':<18} {'prompt tokens':>22} {'out':>4} {'prefill s':>9} {'batch s':>8} "
        f"{'out tok/s':>9} {'full-depth batch s':>18} {'load GB/s':>9}"
    )
    for r in rows:
        out_rate = args.batch * r["new_tokens"] / r["total"]
        print(
            f"{r['role']:<18} {r['prompt']:>22} {r['new_tokens']:>4} {r['prefill']:>9.2f} "
            f"{r['total']:>8.2f} {out_rate:>9.1f} {r['total_full']:>18.2f} {r['gbps']:>9.2f}"
        )
    print(f"fixed cost at the paper's sizes ({args.samples} samples a partition, bf16 weights):")
    for r in rows:
        per_partition = math.ceil(args.samples / args.batch) * r["total_full"]
        for gbps, source in [(r["gbps"], "measured")] + (
            [(args.storage_gbps, "given")] if args.storage_gbps else []
        ):
            load_s = r["bytes_full"] / 1e9 / gbps
            fixed = start_s + load_s
            need = max(1, math.ceil((fixed / TARGET - load_s) / per_partition))
            print(
                f"  {r['role']}: {r['bytes_full'] / 1e9:.1f} GB at {gbps:.2f} GB/s ({source}): "
                f"load {load_s:.1f} s, start + load {fixed:.1f} s, generation "
                f"{per_partition:.1f} s a partition -> {fixed / (load_s + per_partition):.1%} at "
                f"1 partition a load; {need} a load for <= {TARGET:.0%} "
                f"({fixed / (load_s + need * per_partition):.1%})"
            )
    if not args.full:
        print("  (generation: full depth extrapolated from the truncated and the layerless model)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random-weights", action="store_true", required=True)
    depth = parser.add_mutually_exclusive_group()
    depth.add_argument("--layers", type=int, default=2, help="decoder layers kept (default 2)")
    depth.add_argument("--full", action="store_true", help="all layers (needs a GPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, help="samples a batch (default: 8 on CUDA, 1 on CPU)")
    parser.add_argument("--samples", type=int, default=64, help="samples a partition")
    parser.add_argument("--image-size", type=int, default=1024, help="control render side, px")
    parser.add_argument("--caption-tokens", type=int, default=48)
    parser.add_argument("--prompt-tokens", type=int, default=96)
    parser.add_argument(
        "--roles",
        nargs="+",
        choices=[*VISION_MODELS, "prompter"],
        default=["captioner", "captioner-qwen3-vl", "prompter"],
    )
    parser.add_argument(
        "--storage-gbps",
        type=float,
        help="also give the fixed cost at this read throughput (e.g. the nodes' shared storage)",
    )
    args = parser.parse_args(argv)

    from genzoo_assets.core.device import resolve_device

    device = resolve_device(args.device)
    if args.full and not device.startswith("cuda"):
        print("text_gpu: --full builds 7-9 B models at full depth and needs a CUDA GPU")
        return 2
    if args.layers < 1:
        print(f"text_gpu: --layers must be at least 1, got {args.layers}")
        return 2
    args.batch = args.batch or (8 if device.startswith("cuda") else 1)
    start_s = process_start_seconds()
    note(f"process start {start_s:.1f} s")
    rows = [bench_role(role, args, device) for role in args.roles]
    report(rows, start_s, args, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
