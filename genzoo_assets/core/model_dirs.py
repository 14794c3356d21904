"""Find and check model folders (transformers and diffusers) before anything heavy is loaded.

A FLUX or 7B run loads tens of GB; a typo'd path or a half-copied folder should fail in a second with
a message naming the folder and the missing file, not after minutes inside ``from_pretrained``.
Locations are local folders or Hugging Face repo ids already in the local cache (offline). Every
stage that loads a model folder (VLM captioner, LLM prompter, FLUX/SD3 + ControlNets) checks it here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from genzoo_assets.core.errors import InputError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model")
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
# Components of model_index.json that are allowed to be absent (null) in a pipeline.
OPTIONAL_COMPONENTS = {"image_encoder", "feature_extractor", "controlnet", "safety_checker"}


class ModelDirectoryError(InputError, FileNotFoundError):
    """A model location is missing, incomplete or holds the wrong kind of model."""


def resolve_location(
    location: str | os.PathLike | None, role: str, local_files_only: bool = True
) -> tuple[Path, str | None]:
    """(folder, HF revision or None) of a local folder or a cached ``owner/name`` repo id.

    ``role`` names the backend in messages ("VLM captioner", "base", "canny_controlnet").
    """
    if location is None or str(location) == "":
        raise ModelDirectoryError(f"{role}: no model folder given (pass model_dir=...)")
    path = Path(location).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelDirectoryError(f"{role} model location {path} is a file, expected a folder")
        return path.resolve(), None
    text = str(location)
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            snap = Path(snapshot_download(text, local_files_only=local_files_only))
        except (LocalEntryNotFoundError, OSError, ValueError) as exc:
            raise ModelDirectoryError(
                f"{role} model {text!r} is neither a local folder nor a repo in the local Hugging Face "
                f"cache ({type(exc).__name__}); download it first or pass the folder"
            ) from exc
        return snap, snap.name
    raise ModelDirectoryError(f"{role} model folder {path} does not exist")


def model_label(location, folder: Path) -> str:
    """The name a backend records: the folder's, or the repo's for a cached ``owner/name`` id
    (whose folder is a snapshot hash)."""
    if folder.parent.name == "snapshots" and not Path(str(location)).expanduser().exists():
        return str(location).rstrip("/").split("/")[-1]
    return folder.name


def _read_json(path: Path, role: str) -> dict:
    if not path.is_file():
        raise ModelDirectoryError(f"{role} model folder {path.parent} has no {path.name}")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelDirectoryError(f"{role}: {path} is not valid JSON ({exc})") from exc


def missing_weights(folder: Path, role: str) -> list[str]:
    """What is missing of the weights: every shard a ``*.index.json`` names, or any weight file at all."""
    missing = []
    for index in sorted(folder.glob("*.index.json")):
        shards = set(_read_json(index, role).get("weight_map", {}).values())
        missing.extend(
            f"weight shard {s} (named in {index.name})"
            for s in sorted(shards)
            if not (folder / s).is_file()
        )
    if not any(f.suffix in WEIGHT_SUFFIXES and f.is_file() for f in folder.iterdir()):
        missing.append(f"weights: no weight file (*{', *'.join(WEIGHT_SUFFIXES)})")
    return missing


def check_weights(folder: Path, role: str) -> None:
    """At least one weight file, and every shard a ``*.index.json`` names."""
    missing = missing_weights(folder, role)
    if missing:
        raise ModelDirectoryError(
            f"{role} model folder {folder} is incomplete, missing: {'; '.join(missing)}"
        )


def check_transformers_dir(
    location: str | os.PathLike | None, role: str, needs_processor: bool = False
) -> Path:
    """A transformers model folder, after checking config, weights, tokenizer (and image processor)."""
    folder, _ = resolve_location(location, role)
    names = {p.name for p in folder.iterdir()}
    missing = [] if "config.json" in names else ["config.json"]
    missing += missing_weights(folder, role)
    if not names.intersection(TOKENIZER_FILES):
        missing.append(f"a tokenizer ({' or '.join(TOKENIZER_FILES)})")
    if needs_processor and not names.intersection(PROCESSOR_FILES):
        missing.append(f"an image processor config ({' or '.join(PROCESSOR_FILES)})")
    if missing:
        raise ModelDirectoryError(
            f"{role} model folder {folder} is incomplete, missing: {'; '.join(missing)}"
        )
    return folder


def check_model(folder: Path, role: str, expected_classes: tuple[str, ...]) -> dict:
    """A single diffusers model folder (e.g. a ControlNet): config.json of the right class + weights."""
    config = _read_json(folder / "config.json", role)
    cls = config.get("_class_name")
    if cls not in expected_classes:
        raise ModelDirectoryError(
            f"{role} model folder {folder} holds a {cls or 'model without _class_name'}, "
            f"expected {' or '.join(expected_classes)}"
        )
    check_weights(folder, role)
    return config


def check_pipeline(folder: Path, role: str, class_prefix: str) -> dict:
    """A diffusers pipeline folder: model_index.json of the right family, every component present."""
    index = _read_json(folder / "model_index.json", role)
    cls = str(index.get("_class_name", ""))
    if not cls.startswith(class_prefix):
        raise ModelDirectoryError(
            f"{role} model folder {folder} holds a {cls or 'pipeline without _class_name'}, "
            f"expected a {class_prefix}* pipeline"
        )
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or name in OPTIONAL_COMPONENTS:
            continue
        if spec[0] is None:
            raise ModelDirectoryError(
                f"{role} model folder {folder}: model_index.json has no {name}"
            )
        sub = folder / name
        if not sub.is_dir():
            raise ModelDirectoryError(f"{role} model folder {folder} has no {name}/ sub-folder")
        kind = spec[1]
        if "Tokenizer" in kind:
            if not any((sub / f).is_file() for f in TOKENIZER_FILES):
                raise ModelDirectoryError(
                    f"{role}: {sub} has none of the tokenizer files {TOKENIZER_FILES}"
                )
        elif "Scheduler" in kind:
            _read_json(sub / "scheduler_config.json", f"{role} {name}")
        else:
            _read_json(sub / "config.json", f"{role} {name}")
            check_weights(sub, f"{role} {name}")
    return index
