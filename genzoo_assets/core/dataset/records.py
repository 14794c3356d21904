"""One sample as GenZoo's trainer reads it: the ``<key>.jpg`` image and the ``<key>.npz`` record.

The npz holds ``poses`` (35×9), ``betas``, the camera in GenZoo's convention (``CAMERA_CONVENTIONS``),
2D/3D keypoints, bbox, mask area and meta; see :mod:`webdataset` for how records become shards.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from genzoo_assets.core.errors import InputError, MissingInputError
from genzoo_assets.core.paths import stored_path
from genzoo_assets.core.sampling.camera_model import genzoo_fov_deg, genzoo_weak_offsets

CAMERA_VERSIONS = ("v1", "v2")
GENZOO_BETA_LIMIT = 10.0  # GenZoo's `select` keeps a sample only when max |betas| < 10
CAMERA_CONVENTIONS = {
    "v1": "weak perspective (GenZoo's active branch): the body posed from poses and betas WITHOUT "
    "translation, p = X[:, :2]*scales + (txs, tys) in normalised image units, pixel = "
    "(W/2 + W*p_x/2, H/2 + H*p_y/2). txs, tys include scales*transl_xy, so no transls is written.",
    "v2": "full perspective (GenZoo's commented-out branch): K = [[f, 0, H/2], [0, f, H/2], [0, 0, 1]] with "
    "f = (H/2)/2/tan(fovs/2) (GenZoo's formula), pixel = K (X + transls) / depth. fovs is chosen so that "
    "f is the true focal length: true fov = 2*atan(2*tan(fovs/2)).",
}
REQUIRED_COLUMNS = (
    "sample_id",
    "species",
    "betas",
    "global_orient",
    "body_pose",
    "keypoints_3d",
    "keypoints_2d",
    "keypoints_vis",
    "bbox",
    "mask_area",
    "image_path",
)


def wds_key(sample_id: str) -> str:
    """WebDataset splits a name at its first dot into key and extension: ids must lose theirs."""
    return sample_id.replace(".", "-")


def _vector(row, column: str, size: int) -> np.ndarray:
    values = np.asarray(row[column], dtype=np.float64).reshape(-1)
    if values.size != size or not np.all(np.isfinite(values)):
        raise ValueError(
            f"sample {row['sample_id']}: column {column!r} must hold {size} finite numbers, "
            f"got {values.size} values"
        )
    return values


def image_jpeg(data_dir: Path, row) -> tuple[bytes, int]:
    """The row's image as JPEG bytes (re-encoded at quality 95 when stored otherwise) and its width."""
    path = stored_path(data_dir, row["image_path"], row["sample_id"], "image_path")
    if not path.is_file():
        raise MissingInputError(f"sample {row['sample_id']}: image {path} does not exist")
    raw = path.read_bytes()
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"sample {row['sample_id']}: image {path} cannot be decoded")
    if path.suffix.lower() not in (".jpg", ".jpeg"):
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        raw = buf.tobytes()
    return raw, int(image.shape[1])


def _camera_model(row, camera_version: str) -> str:
    model = row.get("camera_model")
    return (
        ("weak" if camera_version == "v1" else "perspective")
        if model is None or pd.isna(model)
        else str(model)
    )


def check_camera(row, camera_version: str) -> None:
    """Raise when ``row``'s camera cannot be written exactly in GenZoo's ``camera_version``."""
    sid, model = row["sample_id"], _camera_model(row, camera_version)
    if camera_version == "v1" and model != "weak":
        raise InputError(
            f"sample {sid}: camera_version 'v1' (GenZoo's weak perspective) cannot represent a "
            f"{model!r} camera exactly; export it as 'v2' or sample with camera_model 'weak'"
        )
    if camera_version == "v2" and model != "perspective":
        raise InputError(
            f"sample {sid}: camera_version 'v2' needs a perspective camera, the sample has {model!r}; "
            f"export it as 'v1'"
        )
    if camera_version == "v1" and not float(row["cam_scale"]) > 0:
        raise InputError(
            f"sample {sid}: cam_scale must be > 0 for a weak camera, got {row['cam_scale']}"
        )
    if camera_version == "v2" and not 0 < float(row["fov_deg"]) < 180:
        raise InputError(f"sample {sid}: fov_deg must be in (0, 180), got {row['fov_deg']}")


def camera_fields(row, camera_version: str) -> dict:
    """The npz camera entries in GenZoo's convention (``CAMERA_CONVENTIONS``)."""
    check_camera(row, camera_version)
    transl = _vector(row, "transl", 3) if "transl" in row.index else np.zeros(3)
    if camera_version == "v1":
        txs, tys = genzoo_weak_offsets(row["cam_scale"], row["cam_tx"], row["cam_ty"], transl)
        return {
            "scales": np.float32(row["cam_scale"]),
            "txs": np.float32(txs),
            "tys": np.float32(tys),
        }
    return {
        "transls": transl.astype(np.float32),
        "fovs": np.float32(genzoo_fov_deg(float(row["fov_deg"]))),
    }


def sample_record(row, data_dir: Path, camera_version: str = "v2", family: str = "") -> dict:
    """One WebDataset sample (``__key__``, ``jpg`` bytes, ``npz`` bytes) from a ``samples`` row."""
    import torch  # here, not at the top: the definitions import this module when they load

    from genzoo_assets.core.body.rotations import axis_angle_to_matrix

    sid = str(row["sample_id"])
    betas = np.asarray(row["betas"], dtype=np.float32).reshape(-1)
    aa = np.concatenate([_vector(row, "global_orient", 3), _vector(row, "body_pose", 102)]).reshape(
        35, 3
    )
    poses = axis_angle_to_matrix(torch.from_numpy(aa)).reshape(35, 9).numpy()
    kp2 = _vector(row, "keypoints_2d", 52).reshape(26, 2)
    vis = np.asarray(row["keypoints_vis"], dtype=np.float64).reshape(-1)
    if vis.size != 26:
        raise ValueError(
            f"sample {sid}: column 'keypoints_vis' must hold 26 values, got {vis.size}"
        )
    jpg, image_size = image_jpeg(data_dir, row)
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
    npz.update(camera_fields(row, camera_version))
    buf = io.BytesIO()
    np.savez(buf, **npz)
    return {"__key__": wds_key(sid), "jpg": jpg, "npz": buf.getvalue()}
