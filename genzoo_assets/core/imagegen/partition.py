"""The ``images`` stage for one species × shard partition.

Either every image of the partition becomes visible or none does: images are written to hidden
temporary names next to their targets and renamed only after the whole partition generated and
scored; on any failure the temporaries are removed and the error propagates. A rerun therefore
never mixes images of two runs, and a failed run leaves the folder as it found it.

A blank image (empty, or one colour everywhere) fails its sample only: it is not stored and its
row is left out of the ``images`` table, so the catalog shows that sample with ``image_path`` NULL
and every export (which reads ``image_path IS NOT NULL``) skips it. The ids are in the returned
table's ``attrs["blank_samples"]``. Only a partition whose every image is blank fails, with
:class:`BlankImageError`, an input error: the seeds make it deterministic, so a retry would
generate the same blank images.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from genzoo_assets.core.errors import InputError, MissingInputError
from genzoo_assets.core.imagegen.alignment import DEFAULT_THRESHOLD, alignment_score
from genzoo_assets.core.imagegen.base import GenerationRequest, ImageGenerator
from genzoo_assets.core.oom import HalvingBatches, step_label
from genzoo_assets.core.paths import new_temp_file, raise_if_disk_full
from genzoo_assets.core.provenance import provenance, provenance_json
from genzoo_assets.core.seeds import derive_seed
from genzoo_assets.core.text_limits import MAX_PROMPT_CHARS, check_length

REQUIRED_COLUMNS = (
    "sample_id",
    "species",
    "shard",
    "index",
    "prompt",
    "rgb_path",
    "depth_path",
    "canny_path",
    "mask_path",
)
POSE_COLUMNS = ("betas", "global_orient", "body_pose", "transl", "camera_model")
SPECIES_INFO_COLUMNS = ("common_name", "scientific_name", "genus", "family", "order", "breed")
OUTPUT_COLUMNS = (
    "sample_id",
    "species",
    "shard",
    "index",
    "image_path",
    "image_backend",
    "model_hashes",
    "image_seed",
    "steps",
    "guidance",
    "cond_scales",
    "alignment_score",
    "edge_f1",
    "mask_iou",
    "flagged",
    "provenance",
)
JPEG_QUALITY = 95


def image_seed(sample: str, base_seed: int = 0) -> int:
    return derive_seed(base_seed, sample, "image")


def _read(data_dir: Path, row: pd.Series, column: str, mode: str) -> np.ndarray:
    path = data_dir / str(row[column])
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode))
    except (OSError, ValueError) as exc:
        raise MissingInputError(
            f"sample {row['sample_id']}: cannot read {column} {path}: {exc}"
        ) from exc


def _mesh(rows: pd.DataFrame, body_model, size: int) -> list[dict]:
    """Posed (camera frame) and rest (canonical frame) vertices + camera per row, for render backends."""
    import torch

    from genzoo_assets.core.render.partition import camera_from_row

    nj = body_model.num_joints
    stack = lambda key, n: np.stack([np.asarray(v, np.float64).reshape(n) for v in rows[key]])  # noqa: E731
    betas = np.stack([np.asarray(b, np.float64) for b in rows["betas"]])
    with torch.no_grad():
        out = body_model(
            betas, stack("global_orient", 3), stack("body_pose", 3 * (nj - 1)), stack("transl", 3)
        )
        rest = body_model.tpose_vertices(torch.as_tensor(betas, dtype=torch.float32))
    c = np.asarray(body_model.canonical_rotation, np.float64)
    verts = out.vertices.detach().cpu().double().numpy()
    rest = rest.detach().cpu().double().numpy() @ c.T
    faces = np.asarray(body_model.faces)
    return [
        {
            "vertices": verts[i],
            "faces": faces,
            "canonical_vertices": rest[i],
            "camera": camera_from_row(row, size),
        }
        for i, (_, row) in enumerate(rows.iterrows())
    ]


def _requests(
    rows: pd.DataFrame, data_dir: Path, body_model, species_info: dict, base_seed: int
) -> list[GenerationRequest]:
    controls = [
        {
            "canny": _read(data_dir, row, "canny_path", "L"),
            "depth": _read(data_dir, row, "depth_path", "L"),
            "mask": _read(data_dir, row, "mask_path", "L") > 127,
            "normal_rgb": _read(data_dir, row, "rgb_path", "RGB"),
        }
        for _, row in rows.iterrows()
    ]
    meshes = [{}] * len(rows)
    if body_model is not None and all(c in rows.columns for c in POSE_COLUMNS):
        meshes = _mesh(rows, body_model, controls[0]["canny"].shape[0])
    reqs = []
    for (_, row), ctl, mesh in zip(rows.iterrows(), controls, meshes):
        info = {
            c: row[c] for c in SPECIES_INFO_COLUMNS if c in rows.columns and isinstance(row[c], str)
        }
        info.update(species_info.get(row["species"], {}))
        reqs.append(
            GenerationRequest(
                sample_id=row["sample_id"],
                prompt=check_length(
                    str(row["prompt"]), MAX_PROMPT_CHARS, f"sample {row['sample_id']}: prompt"
                ),
                seed=image_seed(row["sample_id"], base_seed),
                species=str(row["species"]),
                species_info=info,
                **ctl,
                **mesh,
            )
        )
    return reqs


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _write_hidden(target: Path, data: bytes) -> Path:
    tmp = new_temp_file(target)
    try:
        tmp.write_bytes(data)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise_if_disk_full(exc, target)
        raise
    return tmp


class BlankImageError(InputError):
    """Every image a generator returned for a partition was empty or one colour (FLUX's NaN latents
    decode to black). An input error: the generator's parameters or weights are wrong, and the same
    seeds would give the same images, so the step is not retried."""


def blank_reason(image: Image.Image) -> str | None:
    """Why ``image`` (H×W or H×W×C pixels) is not an image of anything, or None when it is one:
    no pixels, or one value everywhere (a single colour)."""
    pixels = np.asarray(image)
    if pixels.size == 0:
        return "empty"
    if int(pixels.max()) == int(pixels.min()):
        return f"a single colour ({int(pixels.min())})"
    return None


def _all_blank(generator: ImageGenerator, blank: dict[str, str]) -> BlankImageError:
    first, reason = next(iter(blank.items()))
    return BlankImageError(
        f"generator {generator.name} returned a blank image for every one of the {len(blank)} "
        f"samples of this partition (sample {first}: {reason}; parameters {dict(generator.params)}): "
        "check its steps, guidance and model files; no image of this partition was stored"
    )


def generate_partition(
    rows: pd.DataFrame,
    generator: ImageGenerator,
    data_dir: str | Path,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    *,
    body_model=None,
    species_info: dict[str, dict] | None = None,
    base_seed: int = 0,
    run_id: str | None = None,
) -> pd.DataFrame:
    """Generate, score and write one image per row; returns the ``images`` table (``OUTPUT_COLUMNS``).

    Each image is stored at its controls' size (the control render resolution), resized when the
    generator made another size (FLUX at ``GENZOO_RESOLUTION``): the labels stay in that frame.

    ``rows`` are the merged per-sample rows (prompts ⋈ control_renders, plus pose_params and
    shape_params when ``body_model`` is given, so render backends get the posed mesh).
    ``species_info`` maps a species slug to taxon fields (family, order, breed, ...).
    A blank image leaves its row out: ``attrs["blank_samples"]`` maps its id to why it is blank. A
    partition of blank images only raises :class:`BlankImageError`.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"generate_partition: input rows lack columns {missing}")
    if batch_size < 1:
        raise ValueError(f"generate_partition: batch_size must be >= 1, got {batch_size}")
    data_dir = Path(data_dir)
    params = dict(generator.params)
    hashes = dict(generator.model_hashes)
    prov = provenance_json(
        provenance(
            "images",
            generator.name,
            model_files=hashes,
            run_id=run_id,
            params=params,
            threshold=float(threshold),
        )
    )
    out_rows: list[dict] = []
    blank: dict[str, str] = {}  # sample id -> why its image is blank
    pending: list[tuple[Path, Path]] = []  # (temporary, final)
    total = len(rows)
    # a CUDA OOM halves the batch within the step
    batches = HalvingBatches(batch_size, step=step_label("images", rows))
    try:
        for start in range(0, total, batch_size):
            chunk = rows.iloc[start : start + batch_size]
            reqs = _requests(chunk, data_dir, body_model, species_info or {}, base_seed)
            images = batches.map(generator.generate, reqs)
            if len(images) != len(reqs):
                raise RuntimeError(
                    f"generator {generator.name} returned {len(images)} images for {len(reqs)} requests"
                )
            for (_, row), req, image in zip(chunk.iterrows(), reqs, images):
                reason = blank_reason(image)
                if reason is not None:
                    blank[row["sample_id"]] = reason
                    if progress is not None:
                        progress(len(out_rows) + len(blank), total)
                    continue
                h, w = req.size  # the control resolution: the frame of the keypoints and bbox
                image = (
                    image
                    if image.size == (w, h)
                    else image.resize((w, h), Image.Resampling.LANCZOS)
                )
                score = alignment_score(image, req.canny, req.mask)
                rel = f"images/{row['species']}/{row['shard']}/{row['sample_id']}.jpg"
                pending.append((_write_hidden(data_dir / rel, _jpeg(image)), data_dir / rel))
                out_rows.append(
                    {
                        "sample_id": row["sample_id"],
                        "species": row["species"],
                        "shard": row["shard"],
                        "index": int(row["index"]),
                        "image_path": rel,
                        "image_backend": generator.name,
                        "model_hashes": json.dumps(hashes, sort_keys=True),
                        "image_seed": int(req.seed),
                        "steps": int(params.get("steps", 0)),
                        "guidance": float(params.get("guidance", 0.0)),
                        "cond_scales": [float(s) for s in params.get("cond_scales", [])],
                        "alignment_score": score["alignment_score"],
                        "edge_f1": score["edge_f1"],
                        "mask_iou": score["mask_iou"],
                        "flagged": bool(score["alignment_score"] < threshold),
                        "provenance": prov,
                    }
                )
                if progress is not None:
                    progress(len(out_rows) + len(blank), total)
        if total and len(blank) == total:
            raise _all_blank(generator, blank)
        done: list[Path] = []
        try:
            for tmp, final in pending:
                os.replace(tmp, final)
                done.append(final)
        except OSError:
            for final in done:
                final.unlink(missing_ok=True)
            raise
    finally:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
    table = pd.DataFrame(out_rows, columns=list(OUTPUT_COLUMNS))
    table.attrs["blank_samples"] = blank
    return table
