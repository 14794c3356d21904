"""The captions and prompts partitions: per-sample rows in, one DataFrame per stage out.

``caption_partition`` reads pose rows (docs/ARCHITECTURE.md ``pose_params``: ``global_orient``
axis-angle in the camera frame, ``posture``); ``prompt_partition`` reads caption rows. Both keep
row order and return one row per sample with the backend that actually produced it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from genzoo_assets.core.errors import MissingInputError
from genzoo_assets.core.oom import HalvingBatches, step_label
from genzoo_assets.core.paths import data_dir as default_data_dir
from genzoo_assets.core.seeds import derive_seed
from genzoo_assets.core.text.backends import make_captioner, make_prompter
from genzoo_assets.core.text.budget import Clause, TokenBudget
from genzoo_assets.core.text.captioners import Captioner, CaptionInput
from genzoo_assets.core.text.prompters import FittedPrompt, Prompter, PromptInput
from genzoo_assets.core.text_limits import (
    MAX_CAPTION_CHARS,
    MAX_NAME_CHARS,
    MAX_PROMPT_CHARS,
    check_length,
    truncate_at_word,
)

__all__ = [
    "CAPTION_COLUMNS",
    "PROMPT_COLUMNS",
    "TokenBudget",
    "caption_partition",
    "make_captioner",
    "make_prompter",
    "prompt_partition",
    "render_loader",
]

CAPTION_COLUMNS = ["sample_id", "caption", "caption_backend", "caption_truncated"]
PROMPT_COLUMNS = ["sample_id", "prompt", "prompt_backend", "num_tokens", "prompt_truncated"]
PROMPT_STREAM = "prompt"


def _require(rows: pd.DataFrame, columns: list[str], table: str) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise KeyError(f"{table} rows lack column(s) {missing}; present: {list(rows.columns)}")


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula in numpy, ``(N, 3) -> (N, 3, 3)`` (same convention as core.body.rotations;
    kept local so captions need neither torch nor the body package)."""
    theta = np.linalg.norm(axis_angle, axis=-1)[:, None, None]
    safe = np.where(theta < 1e-8, 1.0, theta)
    x, y, z = (axis_angle / safe[:, :, 0]).T
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(-1, 3, 3)
    return np.eye(3) + np.sin(theta) * k + (1.0 - np.cos(theta)) * (k @ k)


def orientation_matrices(global_orient) -> np.ndarray:
    """(N, 3, 3) rotations from a column of axis-angle triples."""
    values = [np.asarray(v, dtype=np.float64).reshape(-1) for v in global_orient]
    bad = [i for i, v in enumerate(values) if v.shape != (3,) or not np.all(np.isfinite(v))]
    if bad:
        raise ValueError(f"pose rows {bad[:5]}: global_orient must be 3 finite axis-angle values")
    if not values:
        return np.zeros((0, 3, 3))
    return axis_angle_to_matrix(np.stack(values))


def render_loader(
    rows: pd.DataFrame, data_dir: str | os.PathLike | None = None
) -> Callable[[str], np.ndarray]:
    """``sample_id -> HxWx3 uint8`` reading each row's ``rgb_path`` (the raw normal render,
    relative to the data directory)."""
    _require(rows, ["sample_id", "rgb_path"], "control_renders")
    root = Path(data_dir) if data_dir is not None else default_data_dir(create=False)
    paths = dict(zip(rows["sample_id"].astype(str), rows["rgb_path"].astype(str)))

    def load(sample_id: str) -> np.ndarray:
        from PIL import Image

        path = root / paths[sample_id]
        try:
            with Image.open(path) as image:
                return np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise MissingInputError(
                f"render of sample {sample_id} cannot be read from {path}: {exc}"
            ) from exc

    return load


def caption_partition(
    rows: pd.DataFrame,
    captioner: Captioner,
    canonical_rotation: np.ndarray,
    images_loader: Callable[[str], np.ndarray] | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    species_name: str | None = None,
    batch_size: int = 32,
) -> pd.DataFrame:
    """One caption per pose row.

    Captioners that look at the render (``needs_images``) get it from ``images_loader(sample_id)``,
    or, without one, from the rows' ``rgb_path`` under ``data_dir`` (merged control_renders rows).
    A caption over ``MAX_CAPTION_CHARS`` is cut at a word boundary (``caption_truncated``).
    """
    _require(rows, ["sample_id", "global_orient"], "pose_params")
    if images_loader is None and getattr(captioner, "needs_images", False):
        images_loader = render_loader(rows, data_dir)
    rotations = orientation_matrices(rows["global_orient"])
    postures = (
        rows["posture"].fillna("").astype(str).tolist()
        if "posture" in rows.columns
        else [""] * len(rows)
    )
    sample_ids = rows["sample_id"].astype(str).tolist()
    tagged = getattr(captioner, "caption_batch_with_backend", None)
    captions: list[tuple[str, str]] = []
    # a CUDA OOM halves the batch within the step
    batches = HalvingBatches(batch_size, step=step_label("captions", rows))
    for start in range(0, len(rows), batch_size):
        ids = sample_ids[start : start + batch_size]
        items = [
            CaptionInput(
                global_orient=rotations[start + i],
                canonical_rotation=canonical_rotation,
                posture=postures[start + i],
                image=images_loader(sid) if images_loader is not None else None,
                species_name=species_name,
            )
            for i, sid in enumerate(ids)
        ]
        if tagged is not None:
            captions.extend(batches.map(tagged, items))
        else:
            texts = batches.map(captioner.caption_batch, items)
            captions.extend((text, captioner.name) for text in texts)
    if len(captions) != len(rows):
        raise RuntimeError(
            f"captioner {captioner.name!r} returned {len(captions)} captions for {len(rows)} rows"
        )
    cut = [truncate_at_word(str(c), MAX_CAPTION_CHARS) for c, _ in captions]
    return pd.DataFrame(
        {
            "sample_id": sample_ids,
            "caption": [c for c, _ in cut],
            "caption_backend": [b for _, b in captions],
            "caption_truncated": [t for _, t in cut],
        },
        columns=CAPTION_COLUMNS,
    )


def prompt_inputs(rows: pd.DataFrame, species_row: dict, base_seed: int = 0) -> list[PromptInput]:
    """Prompt inputs for caption rows; each seed derives from the sample id (stream "prompt")."""
    _require(rows, ["sample_id", "caption"], "captions")
    name = str(species_row.get("common_name") or "").strip()
    if not name:
        raise KeyError(f"species row {species_row.get('key', species_row)!r} has no common_name")
    key = species_row.get("key", name[:40])
    check_length(name, MAX_NAME_CHARS, f"species {key}: common_name")
    breed = species_row.get("breed")
    breed = str(breed).strip() if isinstance(breed, str) and breed.strip() else None
    if breed is not None:
        check_length(breed, MAX_NAME_CHARS, f"species {key}: breed")
    is_dog = bool(species_row.get("is_dog", False))
    return [
        PromptInput(
            name, is_dog, breed, str(caption or ""), derive_seed(base_seed, sid, PROMPT_STREAM)
        )
        for sid, caption in zip(rows["sample_id"].astype(str), rows["caption"])
    ]


def prompt_partition(
    rows: pd.DataFrame,
    species_row: dict,
    prompter: Prompter,
    budget: TokenBudget | None = None,
    *,
    base_seed: int = 0,
    batch_size: int = 32,
) -> pd.DataFrame:
    """One prompt per caption row, fitted to ``budget`` (default: CLIP's 77 tokens, estimated), and
    cut at a word boundary when over ``MAX_PROMPT_CHARS`` (``prompt_truncated``)."""
    budget = budget or TokenBudget()
    items = prompt_inputs(rows, species_row, base_seed)
    fitted: list[FittedPrompt] = []
    # a CUDA OOM halves the batch within the step
    batches = HalvingBatches(batch_size, step=step_label("prompts", rows))
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        if hasattr(prompter, "fitted_batch"):
            fitted.extend(batches.map(lambda part: prompter.fitted_batch(part, budget), chunk))
        else:  # a third-party prompter: its phrases, the first one kept whole
            for text in batches.map(prompter.prompt_batch, chunk):
                parts = [p for p in str(text).split(", ") if p.strip()] or [""]
                clauses = [Clause(parts[0], 100, required=True)] + [
                    Clause(p, len(parts) - i) for i, p in enumerate(parts[1:], start=1)
                ]
                fitted.append(
                    FittedPrompt(
                        *budget.fit(clauses, what=f"prompt for {rows['sample_id'].iloc[start]}"),
                        prompter.name,
                    )
                )
    cut = [truncate_at_word(str(f.text), MAX_PROMPT_CHARS) for f in fitted]
    return pd.DataFrame(
        {
            "sample_id": rows["sample_id"].astype(str).tolist(),
            "prompt": [p for p, _ in cut],
            "prompt_backend": [f.backend for f in fitted],
            "num_tokens": np.asarray([f.num_tokens for f in fitted], dtype=np.int64),
            "prompt_truncated": [t for _, t in cut],
        },
        columns=PROMPT_COLUMNS,
    )
