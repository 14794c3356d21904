"""Export the catalog's samples as WebDataset shards in GenZoo's (HMR2's) layout.

Per sample: ``<key>.jpg`` (the generated image) and ``<key>.npz`` with ``poses`` (35×9 rotation
matrices, row 0 the global orientation), ``betas``, the camera (v1 weak: ``scales, txs, tys``;
v2 perspective: ``transls, fovs``), ``keypoints_2d`` (26×3 x, y, visibility in image pixels),
``keypoints_3d`` (26×3, camera frame), ``bbox`` (x, y, w, h px), ``mask_area`` and meta
(``sample_id``, ``species``, ``family``, ``image_size``).

Splits are by species, so no species is seen in two splits: a held-out clade (every species of
``heldout_families``, GenZoo's Felidae test), then a deterministic species-level train/val split.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
import webdataset as wds

from genzoo_assets.core.body.rotations import axis_angle_to_matrix
from genzoo_assets.core.paths import atomic_path
from genzoo_assets.core.seeds import derive_seed

SPLITS = ("train", "val", "heldout")
MANIFEST = "manifest.json"
CAMERA_VERSIONS = ("v1", "v2")
REQUIRED_COLUMNS = (
    "sample_id", "species", "betas", "global_orient", "body_pose", "keypoints_3d",
    "keypoints_2d", "keypoints_vis", "bbox", "mask_area", "image_path",
)


def wds_key(sample_id: str) -> str:
    """WebDataset splits a name at its first dot into key and extension: ids must lose theirs."""
    return sample_id.replace(".", "-")


def assign_splits(samples: pd.DataFrame, heldout_families=("Felidae",), val_fraction: float = 0.1) -> pd.Series:
    """The split of each row: ``heldout`` by family, then ``val``/``train`` by species.

    The val species are the ``round(val_fraction · n)`` (at least one when there are two or more
    species) with the smallest hash of their name, so adding a species never moves another. With
    one training species (`genzoo demo --species 3`) a species split would leave val empty, so val
    takes ``round(val_fraction · n)`` (at least one) of its samples, smallest hash of their id
    first: validation then measures new samples of a seen species, not new species.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    heldout_families = tuple(heldout_families or ())
    if heldout_families and "family" not in samples.columns:
        raise ValueError(f"samples need a 'family' column to hold out {heldout_families}")
    split = pd.Series("train", index=samples.index, dtype=object)
    if heldout_families:
        split[samples["family"].isin(heldout_families)] = "heldout"
    rest = sorted(set(samples.loc[split == "train", "species"]), key=lambda s: (derive_seed("split", s), s))
    n_val = int(round(val_fraction * len(rest)))
    if val_fraction > 0 and len(rest) >= 2:
        n_val = min(max(n_val, 1), len(rest) - 1)
    split[samples["species"].isin(rest[:n_val]) & (split == "train")] = "val"
    if val_fraction > 0 and len(rest) == 1:
        ids = sorted(samples.loc[split == "train", "sample_id"], key=lambda s: (derive_seed("split", s), s))
        n_val = min(max(int(round(val_fraction * len(ids))), 1), len(ids) - 1)
        split[samples["sample_id"].isin(ids[:n_val])] = "val"
    return split


def _vector(row, column: str, size: int) -> np.ndarray:
    values = np.asarray(row[column], dtype=np.float64).reshape(-1)
    if values.size != size or not np.all(np.isfinite(values)):
        raise ValueError(f"sample {row['sample_id']}: column {column!r} must hold {size} finite numbers, "
                         f"got {values.size} values")
    return values


def _image_jpeg(data_dir: Path, row) -> tuple[bytes, int]:
    path = data_dir / str(row["image_path"])
    if not path.is_file():
        raise FileNotFoundError(f"sample {row['sample_id']}: image {path} does not exist")
    raw = path.read_bytes()
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"sample {row['sample_id']}: image {path} cannot be decoded")
    if path.suffix.lower() not in (".jpg", ".jpeg"):
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        raw = buf.tobytes()
    return raw, int(image.shape[1])


def sample_record(row, data_dir: Path, camera_version: str = "v2", family: str = "") -> dict:
    """One WebDataset sample (``__key__``, ``jpg`` bytes, ``npz`` bytes) from a ``samples`` row."""
    sid = str(row["sample_id"])
    betas = np.asarray(row["betas"], dtype=np.float32).reshape(-1)
    aa = np.concatenate([_vector(row, "global_orient", 3), _vector(row, "body_pose", 102)]).reshape(35, 3)
    poses = axis_angle_to_matrix(torch.from_numpy(aa)).reshape(35, 9).numpy()
    kp2 = _vector(row, "keypoints_2d", 52).reshape(26, 2)
    vis = np.asarray(row["keypoints_vis"], dtype=np.float64).reshape(-1)
    if vis.size != 26:
        raise ValueError(f"sample {sid}: column 'keypoints_vis' must hold 26 values, got {vis.size}")
    jpg, image_size = _image_jpeg(data_dir, row)
    npz = {
        "poses": poses.astype(np.float32),
        "betas": betas,
        "keypoints_2d": np.concatenate([kp2, vis[:, None]], 1).astype(np.float32),
        "keypoints_3d": _vector(row, "keypoints_3d", 78).reshape(26, 3).astype(np.float32),
        "bbox": _vector(row, "bbox", 4).astype(np.float32),
        "mask_area": np.float32(row["mask_area"]),
        "image_size": np.int32(image_size),
        "sample_id": np.str_(sid),
        "species": np.str_(str(row["species"])),
        "family": np.str_(family),
    }
    npz.update(_camera_fields(row, camera_version))
    buf = io.BytesIO()
    np.savez(buf, **npz)
    return {"__key__": wds_key(sid), "jpg": jpg, "npz": buf.getvalue()}


def _camera_fields(row, camera_version: str) -> dict:
    sid = row["sample_id"]
    model = row.get("camera_model", "weak" if camera_version == "v1" else "perspective")
    transl = _vector(row, "transl", 3) if "transl" in row.index else np.zeros(3)
    if camera_version == "v1":
        if model != "weak":
            raise ValueError(f"sample {sid}: camera_version 'v1' needs a weak camera, the sample has {model!r}")
        scale = float(row["cam_scale"])
        if not scale > 0:
            raise ValueError(f"sample {sid}: cam_scale must be > 0 for a weak camera, got {scale}")
        return {"scales": np.float32(scale), "txs": np.float32(row["cam_tx"]), "tys": np.float32(row["cam_ty"]),
                "transls": transl.astype(np.float32)}
    if model != "perspective":
        raise ValueError(f"sample {sid}: camera_version 'v2' needs a perspective camera, the sample has {model!r}")
    fov = float(row["fov_deg"])
    if not 0 < fov < 180:
        raise ValueError(f"sample {sid}: fov_deg must be in (0, 180), got {fov}")
    return {"transls": transl.astype(np.float32), "fovs": np.float32(fov)}


def export_shards(samples: pd.DataFrame, data_dir, out_dir, heldout_families=("Felidae",), val_fraction: float = 0.1,
                  exclude_flagged: bool = True, maxcount: int = 1000, camera_version: str = "v2") -> dict:
    """Write ``<split>-%06d.tar`` shards plus ``manifest.json`` into ``out_dir``.

    Shards are written into a hidden temporary folder and renamed into place, and shards left by
    an earlier export of the same split are removed, so a reader only ever sees one complete
    export. Returns ``{"counts": {split: n}, "shards": [(path, [sample_id, ...]), ...],
    "manifest": path}``; shard paths are as written (under ``out_dir``).
    """
    if camera_version not in CAMERA_VERSIONS:
        raise ValueError(f"camera_version must be one of {CAMERA_VERSIONS}, got {camera_version!r}")
    if maxcount < 1:
        raise ValueError(f"maxcount must be >= 1, got {maxcount}")
    missing = [c for c in REQUIRED_COLUMNS if c not in samples.columns]
    if missing:
        raise ValueError(f"samples are missing columns {missing}")
    if samples["sample_id"].duplicated().any():
        dup = samples.loc[samples["sample_id"].duplicated(), "sample_id"].iloc[0]
        raise ValueError(f"samples hold sample_id {dup!r} more than once")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    rows = samples
    if exclude_flagged and "flagged" in rows.columns:
        rows = rows[~rows["flagged"].fillna(False).astype(bool)]
    rows = rows.sort_values("sample_id", kind="stable")
    split_of = assign_splits(rows, heldout_families, val_fraction)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts, shards = {}, []
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp:
        written: dict[str, list[tuple[str, list[str]]]] = {}
        for split in SPLITS:
            part = rows[split_of == split]
            counts[split] = int(len(part))
            written[split] = _write_split(part, split, data_dir, Path(tmp), maxcount, camera_version) if len(part) else []
        for split in SPLITS:
            for stale in out_dir.glob(f"{split}-*.tar"):
                stale.unlink()
            for name, ids in written[split]:
                os.replace(Path(tmp) / name, out_dir / name)
                shards.append((str(out_dir / name), ids))
    manifest = {
        "counts": counts,
        "camera_version": camera_version,
        "heldout_families": list(heldout_families or ()),
        "val_fraction": val_fraction,
        "species": {s: sorted(set(rows.loc[split_of == s, "species"])) for s in SPLITS},
        "shards": {s: [n for n, _ in written[s]] for s in SPLITS},
    }
    with atomic_path(out_dir / MANIFEST) as tmp_manifest:
        tmp_manifest.write_text(json.dumps(manifest, indent=2))
    return {"counts": counts, "shards": shards, "manifest": str(out_dir / MANIFEST)}


def _write_split(part: pd.DataFrame, split: str, data_dir: Path, tmp: Path, maxcount: int,
                 camera_version: str) -> list[tuple[str, list[str]]]:
    families = part["family"] if "family" in part.columns else pd.Series("", index=part.index)
    out: list[tuple[str, list[str]]] = []
    with wds.ShardWriter(str(tmp / f"{split}-%06d.tar"), maxcount=maxcount, maxsize=float("inf"), verbose=0) as sink:
        for i, (idx, row) in enumerate(part.iterrows()):
            if i % maxcount == 0:
                out.append((f"{split}-{i // maxcount:06d}.tar", []))
            family = families.loc[idx]
            sink.write(sample_record(row, data_dir, camera_version, "" if pd.isna(family) else str(family)))
            out[-1][1].append(str(row["sample_id"]))
    return out


def read_manifest(out_dir) -> dict:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {out_dir}: run export_shards first")
    return json.loads(path.read_text())


__all__ = ["SPLITS", "assign_splits", "export_shards", "read_manifest", "sample_record", "wds_key"]
