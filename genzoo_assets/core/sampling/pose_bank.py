"""Poses drawn uniformly from an ``.npz`` pose bank (GenZoo's ``dog_poses.npz`` and friends).

Accepted arrays (34 posed joints; a leading root joint, 35, is dropped):
``pose_6d`` (N, 34, 6) | (N, 204) in GenZoo's 6D convention (+ optional ``orient_6d`` (N, 6));
``poses`` (N, 34, 3) | (N, 102) | (N, 35, 3) | (N, 105) axis-angle;
``pose_rotmat`` (N, 34, 3, 3) | (N, 35, 3, 3) rotation matrices;
optional ``postures`` (N,) strings. Bank orientations are not used: the camera sampler draws the
viewpoint (GenZoo also re-drew yaw and pitch), and an upright animal is assumed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix, rot6d_to_matrix
from genzoo_assets.core.body.skeleton import NUM_BODY_JOINTS
from genzoo_assets.core.catalog.provenance import file_sha256
from genzoo_assets.core.npzio import read_npz
from genzoo_assets.core.sampling.poses import canonical_to_model

POSE_KEYS = ("pose_6d", "poses", "pose_rotmat")
OPTIONAL_KEYS = ("orient_6d", "postures")


class PoseBankError(ValueError):
    """A pose bank file is missing, empty or has arrays of the wrong shape or values."""


def _body_joints(path: Path, key: str, a: np.ndarray, per_joint: int) -> np.ndarray:
    """Reshape to (N, 34, per_joint), dropping a root joint if the bank includes one."""
    n = a.shape[0]
    flat = a.reshape(n, -1) if a.ndim >= 2 else a
    if a.ndim < 2 or flat.shape[1] not in (NUM_BODY_JOINTS * per_joint, (NUM_BODY_JOINTS + 1) * per_joint):
        raise PoseBankError(
            f"pose bank {path}: '{key}' has shape {a.shape}; expected (N, {NUM_BODY_JOINTS}, {per_joint}) or "
            f"(N, {NUM_BODY_JOINTS * per_joint}) (optionally with the root joint: "
            f"{(NUM_BODY_JOINTS + 1) * per_joint})")
    joints = flat.reshape(n, -1, per_joint)
    return joints[:, 1:] if joints.shape[1] == NUM_BODY_JOINTS + 1 else joints


def load_pose_bank(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """(body_pose (N, 34, 3, 3) float64 in the bank's model coordinates, postures (N,) or None)."""
    path = Path(path)
    arrays = read_npz(path, "pose bank", PoseBankError)
    unknown = sorted(set(arrays) - set(POSE_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise PoseBankError(f"pose bank {path} has unknown key(s) {unknown}; "
                            f"known: {list(POSE_KEYS + OPTIONAL_KEYS)}")
    present = [k for k in POSE_KEYS if k in arrays]
    if len(present) != 1:
        raise PoseBankError(f"pose bank {path} must hold exactly one of {list(POSE_KEYS)}, has {present or 'none'}")
    key = present[0]
    a = np.asarray(arrays[key])
    if not np.issubdtype(a.dtype, np.number):
        raise PoseBankError(f"pose bank {path}: '{key}' is {a.dtype}, not numeric")
    if a.ndim == 0 or a.shape[0] == 0:
        raise PoseBankError(f"pose bank {path}: '{key}' is empty")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        bad = int(np.argwhere(~np.isfinite(a.reshape(a.shape[0], -1)).any(1))[0, 0])
        raise PoseBankError(f"pose bank {path}: '{key}' contains NaN or inf (first at pose {bad})")
    if key == "pose_6d":
        six = _body_joints(path, key, a, 6)
        pairs = six.reshape(*six.shape[:2], 3, 2)
        cross = np.linalg.norm(np.cross(pairs[..., 0], pairs[..., 1]), axis=-1)
        if (cross < 1e-8).any():
            bad = int(np.argwhere(cross < 1e-8)[0, 0])
            raise PoseBankError(f"pose bank {path}: '{key}' pose {bad} has a degenerate 6D rotation "
                                f"(zero or parallel columns)")
        mats = rot6d_to_matrix(torch.from_numpy(six)).numpy()
    elif key == "poses":
        mats = axis_angle_to_matrix(torch.from_numpy(_body_joints(path, key, a, 3))).numpy()
    else:
        if a.shape[-2:] != (3, 3):
            raise PoseBankError(f"pose bank {path}: '{key}' has shape {a.shape}; expected (N, 34, 3, 3)")
        mats = _body_joints(path, key, a.reshape(a.shape[0], -1, 9), 9).reshape(a.shape[0], -1, 3, 3)
        err = np.abs(mats @ np.swapaxes(mats, -1, -2) - np.eye(3)).max(axis=(-1, -2))
        det = np.linalg.det(mats)
        bad = np.argwhere((err > 1e-3) | (det < 0.99))
        if bad.size:
            raise PoseBankError(f"pose bank {path}: '{key}' pose {int(bad[0, 0])} joint {int(bad[0, 1])} "
                                f"is not a rotation matrix (|RRᵀ−I| = {err[tuple(bad[0])]:.3g})")
    if "orient_6d" in arrays and np.asarray(arrays["orient_6d"]).reshape(-1).size % 6:
        raise PoseBankError(f"pose bank {path}: 'orient_6d' has shape {arrays['orient_6d'].shape}; expected (N, 6)")
    postures = None
    if "postures" in arrays:
        postures = np.asarray(arrays["postures"]).astype(str).reshape(-1)
        if postures.shape[0] != mats.shape[0]:
            raise PoseBankError(f"pose bank {path}: 'postures' has {postures.shape[0]} entries for "
                                f"{mats.shape[0]} poses")
    return mats, postures


class BankPoseSampler:
    """Uniform draws from a pose bank; joint rotations re-expressed in the body model's frame."""

    name = "bank"

    def __init__(self, path: str | os.PathLike, body_model, bank_canonical_rotation: np.ndarray | None = None):
        self.path = Path(path)
        mats, self.postures = load_pose_bank(self.path)
        c_model = np.asarray(body_model.canonical_rotation, dtype=np.float64)
        if bank_canonical_rotation is not None:
            # bank frame → canonical → model frame: a bank recorded on SMAL posing the procedural model.
            c_bank = np.asarray(bank_canonical_rotation, dtype=np.float64)
            mats = canonical_to_model(np.einsum("ij,...jk,lk->...il", c_bank, mats, c_bank), c_model)
        self.body_pose = mats
        self.model_files = {"pose_bank": file_sha256(self.path)}

    def __len__(self) -> int:
        return self.body_pose.shape[0]

    def sample(self, rng: np.random.Generator) -> tuple[None, np.ndarray, str]:
        i = int(rng.integers(len(self)))
        posture = str(self.postures[i]) if self.postures is not None else "bank"
        return None, self.body_pose[i].copy(), posture
