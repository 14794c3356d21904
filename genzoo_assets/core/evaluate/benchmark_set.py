"""The test-set container the benchmark runs on, and its builders (Animal3D, GenZoo held-out).

Crop convention (the regressor's, ``core.regressor.crop``, i.e. HMR2's): a sample is seen
through a crop window centred on ``crop_center`` whose height is ``crop_size`` pixels (image
pixels, origin at the top-left corner of the top-left pixel); crop coordinates are
``(p − crop_center) / crop_size``, so y spans [−0.5, 0.5] over the crop. ``crop_box`` gives the
``(cx, cy, crop_height)`` rows that ``core.regressor.crop.crop_image`` takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.evaluate.animal3d import Animal3DSet
from genzoo_assets.core.regressor.crop import BBOX_PADDING, crop_box


@dataclass
class BenchmarkSet:
    """One test set: inputs for ``predict_fn`` plus the ground truth, one row per sample."""

    name: str  # test-set name, e.g. "animal3d" or "heldout"
    sample_ids: list[str]
    images: list  # image paths (str / Path) or (H, W, 3) uint8 RGB arrays
    keypoints_2d: np.ndarray  # (B, 26, 2) image pixels
    visibility: np.ndarray  # (B, 26) bool
    mask_area: np.ndarray  # (B,) pixels; PCK normaliser is sqrt(mask_area)
    gt_betas: np.ndarray  # (B, nb)
    gt_rotmat: np.ndarray  # (B, 35, 3, 3), row 0 global orientation
    species: list[str]
    family: list[str]
    crop_center: np.ndarray  # (B, 2) image pixels
    crop_size: np.ndarray  # (B,) crop height, pixels
    gt_keypoints_3d: np.ndarray | None = (
        None  # (B, 26, 3): given 3D keypoints (Animal3D's JSON) instead of the GT model's
    )

    def __post_init__(self):
        n = len(self.sample_ids)
        if n == 0:
            raise ValueError(f"test set {self.name!r} is empty")
        self.keypoints_2d = np.asarray(self.keypoints_2d, dtype=np.float64)[..., :2]
        self.visibility = np.asarray(self.visibility).astype(bool)
        self.mask_area = np.asarray(self.mask_area, dtype=np.float64).reshape(-1)
        self.gt_betas = np.asarray(self.gt_betas, dtype=np.float64)
        self.gt_rotmat = np.asarray(self.gt_rotmat, dtype=np.float64).reshape(n, -1, 3, 3)
        self.crop_center = np.asarray(self.crop_center, dtype=np.float64).reshape(n, 2)
        self.crop_size = np.asarray(self.crop_size, dtype=np.float64).reshape(-1)
        if self.gt_keypoints_3d is not None:
            self.gt_keypoints_3d = np.asarray(self.gt_keypoints_3d, dtype=np.float64)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "name" and value is not None and len(value) != n:
                raise ValueError(
                    f"test set {self.name!r}: {f.name} has {len(value)} rows, sample_ids has {n}"
                )
        expect = {
            "keypoints_2d": (26, 2),
            "visibility": (26,),
            "gt_rotmat": (35, 3, 3),
            "gt_keypoints_3d": (26, 3),
        }
        for key, shape in expect.items():
            if getattr(self, key) is not None and getattr(self, key).shape[1:] != shape:
                raise ValueError(
                    f"test set {self.name!r}: {key} must be (B, {shape}), got {getattr(self, key).shape}"
                )
        for key in ("mask_area", "crop_size"):
            bad = ~(np.isfinite(getattr(self, key)) & (getattr(self, key) > 0))
            if bad.any():
                i = int(np.nonzero(bad)[0][0])
                raise ValueError(
                    f"test set {self.name!r}: sample {self.sample_ids[i]!r} has {key} "
                    f"{float(getattr(self, key)[i])} (must be > 0; a zero-area mask cannot normalise PCK)"
                )
        for key in ("keypoints_2d", "gt_betas", "gt_rotmat", "crop_center"):
            arr = getattr(self, key)
            finite = (
                np.isfinite(arr)
                if key != "keypoints_2d"
                else np.isfinite(arr) | ~self.visibility[..., None]
            )
            if not finite.all():
                i = int(np.argwhere(~finite)[0][0])
                raise ValueError(
                    f"test set {self.name!r}: sample {self.sample_ids[i]!r} has non-finite {key}"
                )

    def __len__(self) -> int:
        return len(self.sample_ids)

    def subset(self, index) -> BenchmarkSet:
        """Rows ``index`` (slice, ints or bool mask) as a new set; what ``predict_fn`` receives."""
        idx = np.arange(len(self))[index]

        def pick(v):
            return [v[i] for i in idx] if isinstance(v, list) else (None if v is None else v[idx])

        return replace(
            self, **{f.name: pick(getattr(self, f.name)) for f in fields(self) if f.name != "name"}
        )

    @property
    def crop_box(self) -> np.ndarray:
        """(B, 3) ``(cx, cy, crop_height)`` pixels, the regressor's crop window."""
        return np.concatenate([self.crop_center, self.crop_size[:, None]], axis=1)

    def crop_to_pixels(self, xy_c: np.ndarray) -> np.ndarray:
        """Crop coordinates (B, N, 2) → image pixels (B, N, 2)."""
        return self.crop_center[:, None] + xy_c * self.crop_size[:, None, None]

    def pixels_to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Image pixels (B, N, 2) → crop coordinates (B, N, 2)."""
        return (xy - self.crop_center[:, None]) / self.crop_size[:, None, None]


def mask_area_from_file(path: str | Path) -> int:
    """Foreground pixel count of a mask image: pixels above half its maximum (0/1 and 0/255 masks
    alike, and robust to compression noise near zero)."""
    import cv2

    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise InputError(f"mask {path} cannot be read as an image")
    return int(np.count_nonzero(mask > mask.max() / 2.0)) if mask.max() > 0 else 0


def _boxes(bbox, padding: float) -> np.ndarray:
    return np.stack(
        [crop_box(b, padding=padding) for b in np.asarray(bbox, dtype=np.float64).reshape(-1, 4)]
    )


def benchmark_set_from_animal3d(
    a3d: Animal3DSet,
    name: str = "animal3d",
    padding: float = BBOX_PADDING,
    mask_area: np.ndarray | None = None,
) -> BenchmarkSet:
    """Animal3D as a BenchmarkSet: mask areas read from the masks (unless given), crop windows from
    the bboxes exactly as the regressor's reader makes them (``core.regressor.crop.crop_box``).

    Species and family are both the item's ``supercategory`` (Animal3D's finest shared label).
    When the set was loaded with the JSON's ``keypoint_3d`` (``keypoints_3d_source == "json"``),
    they become ``gt_keypoints_3d``, the MPJPE ground truth.
    """
    if mask_area is None:
        mask_area = np.array([mask_area_from_file(p) for p in a3d.mask_paths], dtype=np.float64)
    zero = np.nonzero(np.asarray(mask_area) <= 0)[0]
    if zero.size:
        i = int(zero[0])
        raise InputError(
            f"{a3d.json_path}: data[{i}] mask {a3d.mask_paths[i]} is empty (zero area): "
            "PCK cannot be normalised by sqrt(mask area)"
        )
    rotmat = axis_angle_to_matrix(torch.as_tensor(a3d.pose, dtype=torch.float64)).numpy()
    box = _boxes(a3d.bbox, padding)
    return BenchmarkSet(
        name=name,
        sample_ids=[f"{i:05d}_{Path(p).stem}" for i, p in enumerate(a3d.image_paths)],
        images=list(a3d.image_paths),
        keypoints_2d=a3d.keypoints_2d[..., :2],
        visibility=a3d.keypoints_2d[..., 2] > 0,
        mask_area=mask_area,
        gt_betas=a3d.betas,
        gt_rotmat=rotmat,
        species=list(a3d.supercategory),
        family=list(a3d.supercategory),
        crop_center=box[:, :2],
        crop_size=box[:, 2],
        gt_keypoints_3d=a3d.keypoints_3d if a3d.keypoints_3d_source == "json" else None,
    )


def benchmark_set_from_arrays(
    name: str,
    images: Sequence,
    keypoints_2d,
    mask_area,
    gt_betas,
    gt_rotmat,
    species: Sequence[str],
    family: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
    visibility=None,
    crop_center=None,
    crop_size=None,
    bbox=None,
    image_size=None,
    padding: float = BBOX_PADDING,
) -> BenchmarkSet:
    """Generic builder (our WebDataset ``heldout`` split, or any arrays).

    ``keypoints_2d`` (B, 26, 2|3) in image pixels; a third column is the visibility unless
    ``visibility`` is given. ``gt_rotmat`` may be (B, 35, 9) (the shards' ``poses``) or (B, 35, 3, 3).
    The crop: ``crop_center``/``crop_size`` if given, else the regressor's window around ``bbox``
    (B, 4) x, y, w, h, else the whole image (centre, longer side) with ``image_size`` (B, 2) as
    (width, height) or read off array images.
    """
    kp = np.asarray(keypoints_2d, dtype=np.float64)
    n = kp.shape[0]
    if visibility is None:
        visibility = kp[..., 2] > 0 if kp.shape[-1] == 3 else np.ones(kp.shape[:2], dtype=bool)
    if (crop_center is None or crop_size is None) and bbox is not None:
        box = _boxes(bbox, padding)
        crop_center, crop_size = box[:, :2], box[:, 2]
    if crop_center is None or crop_size is None:
        if image_size is None:
            if not all(isinstance(im, np.ndarray) for im in images):
                raise ValueError(
                    f"test set {name!r}: give crop_center/crop_size or image_size when images are paths"
                )
            image_size = [(im.shape[1], im.shape[0]) for im in images]
        wh = np.asarray(image_size, dtype=np.float64).reshape(n, 2)
        crop_center = wh / 2.0 if crop_center is None else crop_center
        crop_size = wh.max(axis=1) if crop_size is None else crop_size
    return BenchmarkSet(
        name=name,
        sample_ids=list(sample_ids)
        if sample_ids is not None
        else [f"{name}.{i:05d}" for i in range(n)],
        images=list(images),
        keypoints_2d=kp[..., :2],
        visibility=visibility,
        mask_area=mask_area,
        gt_betas=gt_betas,
        gt_rotmat=np.asarray(gt_rotmat, dtype=np.float64).reshape(n, 35, 3, 3),
        species=list(species),
        family=list(family) if family is not None else list(species),
        crop_center=crop_center,
        crop_size=crop_size,
    )


def benchmark_set_from_samples(samples: Iterable[dict], name: str = "heldout") -> BenchmarkSet:
    """From the exported shards' per-sample records (``core.dataset.records.sample_record`` + the
    decoded image): ``poses`` (35×9), ``betas``, ``keypoints_2d`` (26×2|3 image px; visibility from
    ``keypoints_vis`` or the third column), ``mask_area``, ``species``, optional ``family`` and
    ``bbox`` (the crop window is made from it as the reader does; the whole image without it), the
    image under ``image`` or ``jpg`` (H×W×3 uint8), the id under ``sample_id`` or ``__key__``."""
    rows = list(samples)
    if not rows:
        raise ValueError(f"test set {name!r}: no samples")
    need = ("poses", "betas", "keypoints_2d", "mask_area", "species")
    for i, row in enumerate(rows):
        missing = [k for k in need if k not in row] + (
            [] if ("image" in row or "jpg" in row) else ["image"]
        )
        if missing:
            raise ValueError(
                f"test set {name!r}: sample {row.get('sample_id', row.get('__key__', i))!r} "
                f"is missing {missing}"
            )
    images = [np.asarray(r["image"] if "image" in r else r["jpg"]) for r in rows]
    kp = np.stack([np.asarray(r["keypoints_2d"], dtype=np.float64).reshape(26, -1) for r in rows])
    has = lambda key: all(key in r for r in rows)  # noqa: E731
    vis = (
        np.stack([np.asarray(r["keypoints_vis"]).reshape(26) for r in rows])
        if has("keypoints_vis")
        else None
    )
    return benchmark_set_from_arrays(
        name=name,
        images=images,
        keypoints_2d=kp,
        visibility=vis,
        bbox=np.stack([np.asarray(r["bbox"], dtype=np.float64).reshape(4) for r in rows])
        if has("bbox")
        else None,
        mask_area=np.array([float(r["mask_area"]) for r in rows]),
        gt_betas=np.stack([np.asarray(r["betas"], dtype=np.float64).ravel() for r in rows]),
        gt_rotmat=np.stack(
            [np.asarray(r["poses"], dtype=np.float64).reshape(35, 3, 3) for r in rows]
        ),
        species=[str(r["species"]) for r in rows],
        family=[str(r.get("family", r["species"])) for r in rows],
        sample_ids=[
            str(r.get("sample_id", r.get("__key__", f"{name}.{i:05d}"))) for i, r in enumerate(rows)
        ],
    )
