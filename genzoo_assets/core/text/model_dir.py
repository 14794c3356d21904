"""Check a local transformers model folder before loading it, and the options shared by loaders.

A 7B model takes minutes to load; a wrong path or a half-copied folder must fail at once, with the
folder and the missing file named, not deep inside ``from_pretrained``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from genzoo_assets.core.catalog.provenance import file_sha256

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


class ModelDirectoryError(FileNotFoundError):
    """A model folder is missing or lacks a file the backend needs."""


def check_model_dir(path: str | os.PathLike, role: str, needs_processor: bool = False) -> Path:
    """The resolved folder, after checking config, weights, tokenizer (and image processor).

    ``role`` names the backend in messages ("VLM captioner", "LLM prompter").
    """
    if path is None or str(path) == "":
        raise ModelDirectoryError(f"{role}: no model folder given (pass model_dir=...)")
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelDirectoryError(f"{role}: model folder {folder} does not exist")
    if not folder.is_dir():
        raise ModelDirectoryError(f"{role}: model location {folder} is a file, expected a folder")
    names = {p.name for p in folder.iterdir()}
    missing = []
    if "config.json" not in names:
        missing.append("config.json")
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in names):
        missing.append(f"weights (*{', *'.join(WEIGHT_SUFFIXES)})")
    if not names.intersection(TOKENIZER_FILES):
        missing.append(f"a tokenizer ({' or '.join(TOKENIZER_FILES)})")
    if needs_processor and not names.intersection(PROCESSOR_FILES):
        missing.append(f"an image processor config ({' or '.join(PROCESSOR_FILES)})")
    for index in folder.glob("*.index.json"):
        shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        missing.extend(sorted(f"weight shard {s} (named in {index.name})" for s in shards if s not in names))
    if missing:
        raise ModelDirectoryError(f"{role}: model folder {folder} is incomplete, missing: {'; '.join(missing)}")
    return folder.resolve()


def folder_sha256(folder: Path) -> str:
    """sha256 over the folder's files (names included): the model's identity in provenance."""
    return file_sha256(folder)


def resolve_device(device: str | None) -> str:
    """"cuda" when available, else "cpu", unless a device is given."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype, device: str):
    """A torch dtype from a name ("bfloat16", "float16", "float32") or ``None`` (bf16 on cuda, fp32 on cpu)."""
    import torch

    if dtype is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown torch dtype {dtype!r} (use bfloat16, float16 or float32)")
    return value
