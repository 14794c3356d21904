"""Loader for the Animal3D release (JSON + images + masks), with ground truth from SMAL parameters.

GT vertices, joints and the 26 keypoints are computed from each item's SMAL ``pose`` / ``shape`` +
``shape_extra`` / ``trans`` through SMAL's own 41-beta model, which the user supplies separately
from the regressor's body model: Animal3D's betas are coordinates in SMAL's shape space, and
zero-padding them into another model's (SMAL+'s 145) would give a different animal. A model with
any other number of betas is refused.

The release's ``keypoint_3d`` are known to be unreliable, so by default (``keypoints_3d="smal"``)
the 3D keypoints are those of the SMAL mesh; ``keypoints_3d="json"`` takes the release's instead,
as AniMer's evaluator does (``eval_3d`` scores PA-MPJPE against ``batch['keypoints_3d']``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genzoo_assets.core.errors import InputError

SMAL_NUM_BETAS = 41  # Animal3D's ``shape`` (20) + ``shape_extra`` (21)
KEYPOINTS_3D_SOURCES = ("smal", "json")
NUM_POSE = 105  # 35 joints × axis-angle; row 0 is the global orientation
NUM_KEYPOINTS = 26
REQUIRED_FIELDS = (
    "img_path",
    "mask_path",
    "supercategory",
    "keypoint_2d",
    "bbox",
    "pose",
    "shape",
    "shape_extra",
    "trans",
)


class Animal3DError(InputError):
    """The Animal3D release (or the body model given for it) cannot be used as is."""


@dataclass
class Animal3DSet:
    """Arrays over the N items of one Animal3D JSON, in file order."""

    json_path: Path
    image_paths: list[Path]
    mask_paths: list[Path]
    supercategory: list[str]
    keypoints_2d: np.ndarray  # (N, 26, 3) x, y px, visibility
    bbox: np.ndarray  # (N, 4) x, y, w, h px
    betas: np.ndarray  # (N, 41)
    pose: np.ndarray  # (N, 35, 3) axis-angle, row 0 global
    trans: np.ndarray  # (N, 3)
    vertices: np.ndarray  # (N, V, 3) float32, from the SMAL parameters
    joints: np.ndarray  # (N, 35, 3) float32
    keypoints_3d: (
        np.ndarray
    )  # (N, 26, 3) float32: the SMAL mesh's, or the JSON's (keypoints_3d_source)
    keypoints_3d_source: str = "smal"  # "smal" | "json"

    def __len__(self) -> int:
        return len(self.image_paths)


def _numbers(path: Path, index: int, item: dict, field: str, shape: tuple[int, ...]) -> np.ndarray:
    where = f"{path}: data[{index}].{field}"
    try:
        arr = np.asarray(item[field], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise Animal3DError(f"{where} is not a numeric array: {exc}") from exc
    if arr.size != int(np.prod(shape)):
        want = "×".join(str(s) for s in shape)
        raise Animal3DError(f"{where} has {arr.size} values (shape {arr.shape}), expected {want}")
    if not np.isfinite(arr).all():
        raise Animal3DError(f"{where} has non-finite values")
    return arr.reshape(shape)


def read_animal3d_json(json_path: str | Path) -> list[dict]:
    """The ``data`` list of an Animal3D JSON, with clear errors for a missing or malformed file."""
    path = Path(json_path)
    if not path.is_file():
        raise Animal3DError(f"Animal3D JSON {path} does not exist")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Animal3DError(f"Animal3D JSON {path} is not valid JSON: {exc}") from exc
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise Animal3DError(f"Animal3D JSON {path} has no top-level 'data' list")
    if not data:
        raise Animal3DError(f"Animal3D JSON {path} has an empty 'data' list")
    return data


def smal_forward(
    body_model,
    betas: np.ndarray,
    pose: np.ndarray,
    trans: np.ndarray | None = None,
    chunk: int = 256,
):
    """(vertices, joints, keypoints) float32 numpy for axis-angle ``pose`` (N,35,3) or rotmats (N,35,3,3).

    Betas shorter than the model's are zero-padded (SMAL's 41 into SMAL+'s 145).
    """
    nb = int(body_model.num_betas)
    if betas.shape[1] > nb:
        raise Animal3DError(
            f"body model {body_model.source!r} has {nb} betas, fewer than the {betas.shape[1]} given"
        )
    outs: list[tuple[np.ndarray, ...]] = []
    with torch.no_grad():
        for start in range(0, len(betas), chunk):
            b = torch.zeros(min(chunk, len(betas) - start), nb, dtype=torch.float32)
            b[:, : betas.shape[1]] = torch.as_tensor(
                betas[start : start + chunk], dtype=torch.float32
            )
            p = torch.as_tensor(pose[start : start + chunk], dtype=torch.float32)
            t = (
                None
                if trans is None
                else torch.as_tensor(trans[start : start + chunk], dtype=torch.float32)
            )
            out = body_model(b, p[:, 0], p[:, 1:], transl=t)
            outs.append(
                tuple(
                    x.detach().cpu().numpy().astype(np.float32)
                    for x in (out.vertices, out.joints, out.keypoints)
                )
            )
    return tuple(np.concatenate(parts) for parts in zip(*outs))


def load_animal3d(
    json_path: str | Path,
    smal_model,
    image_root: str | Path | None = None,
    check_files: bool = True,
    keypoints_3d: str = "smal",
) -> Animal3DSet:
    """Load an Animal3D split (e.g. ``test.json``) and derive GT geometry with ``smal_model``.

    ``smal_model`` must be SMAL's 41-beta model (see the module docstring). ``img_path`` /
    ``mask_path`` are resolved against ``image_root`` (default: the JSON's folder).
    ``keypoints_3d``: ``"smal"`` (the SMAL mesh's keypoints) or ``"json"`` (the release's
    ``keypoint_3d``, every item must have it).
    """
    path = Path(json_path)
    if keypoints_3d not in KEYPOINTS_3D_SOURCES:
        raise Animal3DError(
            f"keypoints_3d must be one of {KEYPOINTS_3D_SOURCES}, got {keypoints_3d!r}"
        )
    if int(smal_model.num_betas) != SMAL_NUM_BETAS:
        raise Animal3DError(
            f"Animal3D ({path}) ground truth needs SMAL's {SMAL_NUM_BETAS}-beta model; "
            f"{getattr(smal_model, 'source', smal_model)!r} has {smal_model.num_betas} betas "
            "(another shape space, e.g. SMAL+'s 145, would turn Animal3D's betas into a different animal)"
        )
    data = read_animal3d_json(path)
    root = Path(image_root) if image_root is not None else path.parent
    cols: dict[str, list] = {
        k: [] for k in ("img", "mask", "cat", "kp2d", "kp3d", "bbox", "betas", "pose", "trans")
    }
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise Animal3DError(f"{path}: data[{i}] is not an object")
        missing = [f for f in REQUIRED_FIELDS if f not in item]
        if missing:
            raise Animal3DError(f"{path}: data[{i}] is missing field(s) {missing}")
        for field, key in (("img_path", "img"), ("mask_path", "mask")):
            file = root / str(item[field])
            if check_files and not file.is_file():
                raise Animal3DError(f"{path}: data[{i}].{field} {file} does not exist")
            cols[key].append(file)
        cols["cat"].append(str(item["supercategory"]))
        cols["kp2d"].append(_numbers(path, i, item, "keypoint_2d", (NUM_KEYPOINTS, 3)))
        if keypoints_3d == "json":
            if "keypoint_3d" not in item:
                raise Animal3DError(
                    f"{path}: data[{i}] has no 'keypoint_3d' (keypoints_3d='json' needs it on every item)"
                )
            cols["kp3d"].append(_numbers(path, i, item, "keypoint_3d", (NUM_KEYPOINTS, 3)))
        bbox = _numbers(path, i, item, "bbox", (4,))
        if bbox[2] <= 0 or bbox[3] <= 0:
            raise Animal3DError(
                f"{path}: data[{i}].bbox {bbox.tolist()} has a non-positive width or height"
            )
        cols["bbox"].append(bbox)
        shape = np.concatenate(
            [
                np.ravel(_numbers(path, i, item, f, (np.size(item[f]),)))
                for f in ("shape", "shape_extra")
            ]
        )
        if shape.size != SMAL_NUM_BETAS:
            raise Animal3DError(
                f"{path}: data[{i}].shape + shape_extra have {shape.size} values, expected {SMAL_NUM_BETAS}"
            )
        cols["betas"].append(shape)
        cols["pose"].append(_numbers(path, i, item, "pose", (NUM_POSE,)).reshape(35, 3))
        cols["trans"].append(_numbers(path, i, item, "trans", (3,)))
    betas, pose, trans = (np.stack(cols[k]) for k in ("betas", "pose", "trans"))
    vertices, joints, keypoints = smal_forward(smal_model, betas, pose, trans)
    if keypoints_3d == "json":
        keypoints = np.stack(cols["kp3d"]).astype(np.float32)
    return Animal3DSet(
        json_path=path,
        image_paths=cols["img"],
        mask_paths=cols["mask"],
        supercategory=cols["cat"],
        keypoints_2d=np.stack(cols["kp2d"]),
        bbox=np.stack(cols["bbox"]),
        betas=betas,
        pose=pose,
        trans=trans,
        vertices=vertices,
        joints=joints,
        keypoints_3d=keypoints,
        keypoints_3d_source=keypoints_3d,
    )
