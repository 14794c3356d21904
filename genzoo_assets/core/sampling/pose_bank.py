"""Poses drawn uniformly from an ``.npz`` pose bank (GenZoo's ``dog_poses.npz`` and friends).

Accepted arrays (34 posed joints; a leading root joint, 35, is dropped):
``pose_6d`` (N, 34, 6) | (N, 204) in GenZoo's 6D convention (+ optional ``orient_6d`` (N, 6));
``poses`` (N, 34, 3) | (N, 102) | (N, 35, 3) | (N, 105) axis-angle;
``pose_rotmat`` (N, 34, 3, 3) | (N, 35, 3, 3) rotation matrices;
optional ``postures`` (N,) strings.

Global orientation (``orientation``): ``"bank"`` (the default, GenZoo's ``genzoo_pipeline.ipynb``)
draws it from ``orient_6d`` (M, 6) with an index of its own, independent of the pose's, exactly as
GenZoo samples ``pose_6d[rng.integers(N)]`` and ``orient_6d[rng.integers(M)]``; it is the
model → camera rotation (GenZoo poses SMAL directly in its y-down camera frame, ours), so the camera
sampler only frames the body. ``"view"``: the bank gives the body pose only and our yaw/pitch
sampler (``camera_sampler.sample_view``) draws the viewpoint of an upright animal — the only choice
for banks without ``orient_6d``.

Under a sampling plan (:meth:`BankPoseSampler.under_plan`) the base is the bank's own: uniform over
its rows. The plan moves each posture, and each (yaw bin, pitch bin) of the ``orient_6d`` rows, by
the ratio it moved that level of its own base (``planning.proposal.tilted_proposal``); within a level
the rows stay equally likely, so a draw's importance weight (bank base / proposal) depends only on
its posture and its orientation's bins.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from genzoo_assets.core.body.rotations import axis_angle_to_matrix, rot6d_to_matrix
from genzoo_assets.core.body.skeleton import NUM_BODY_JOINTS
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.npzio import read_npz
from genzoo_assets.core.planning.proposal import tilted_proposal
from genzoo_assets.core.provenance import file_sha256
from genzoo_assets.core.sampling.camera_model import view_angles
from genzoo_assets.core.sampling.canonical import canonical_to_model
from genzoo_assets.core.sampling.planned import (
    PITCH_BINS,
    YAW_BINS,
    PartitionPlan,
    pitch_bin,
    yaw_bin,
)

POSE_KEYS = ("pose_6d", "poses", "pose_rotmat")
OPTIONAL_KEYS = ("orient_6d", "postures")
ORIENTATIONS = ("bank", "view")


class PoseBankError(InputError):
    """A pose bank file is missing, empty or has arrays of the wrong shape or values."""


def _body_joints(path: Path, key: str, a: np.ndarray, per_joint: int) -> np.ndarray:
    """Reshape to (N, 34, per_joint), dropping a root joint if the bank includes one."""
    n = a.shape[0]
    flat = a.reshape(n, -1) if a.ndim >= 2 else a
    if a.ndim < 2 or flat.shape[1] not in (
        NUM_BODY_JOINTS * per_joint,
        (NUM_BODY_JOINTS + 1) * per_joint,
    ):
        raise PoseBankError(
            f"pose bank {path}: '{key}' has shape {a.shape}; expected (N, {NUM_BODY_JOINTS}, {per_joint}) or "
            f"(N, {NUM_BODY_JOINTS * per_joint}) (optionally with the root joint: "
            f"{(NUM_BODY_JOINTS + 1) * per_joint})"
        )
    joints = flat.reshape(n, -1, per_joint)
    return joints[:, 1:] if joints.shape[1] == NUM_BODY_JOINTS + 1 else joints


def _rot6d(path: Path, key: str, six: np.ndarray) -> np.ndarray:
    """6D rotations (..., 6) → matrices (..., 3, 3), refusing degenerate (zero / parallel) columns."""
    pairs = six.reshape(*six.shape[:-1], 3, 2)
    cross = np.linalg.norm(np.cross(pairs[..., 0], pairs[..., 1]), axis=-1)
    if (cross < 1e-8).any():
        bad = int(np.argwhere(cross < 1e-8)[0, 0])
        raise PoseBankError(
            f"pose bank {path}: '{key}' pose {bad} has a degenerate 6D rotation "
            f"(zero or parallel columns)"
        )
    return rot6d_to_matrix(torch.from_numpy(six)).numpy()


def _orientations(path: Path, raw) -> np.ndarray:
    a = np.asarray(raw)
    if (
        not np.issubdtype(a.dtype, np.number)
        or a.ndim == 0
        or a.size == 0
        or a.size % 6
        or a.shape[0] * 6 != a.size
    ):
        raise PoseBankError(f"pose bank {path}: 'orient_6d' has shape {a.shape}; expected (N, 6)")
    a = a.astype(np.float64).reshape(-1, 6)
    if not np.isfinite(a).all():
        raise PoseBankError(f"pose bank {path}: 'orient_6d' contains NaN or inf")
    return _rot6d(path, "orient_6d", a)


def load_pose_bank(
    path: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(body_pose (N, 34, 3, 3) float64 in the bank's model coordinates, postures (N,) or None,
    global orientations (M, 3, 3) from ``orient_6d`` or None)."""
    path = Path(path)
    arrays = read_npz(path, "pose bank", PoseBankError)
    unknown = sorted(set(arrays) - set(POSE_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise PoseBankError(
            f"pose bank {path} has unknown key(s) {unknown}; "
            f"known: {list(POSE_KEYS + OPTIONAL_KEYS)}"
        )
    present = [k for k in POSE_KEYS if k in arrays]
    if len(present) != 1:
        raise PoseBankError(
            f"pose bank {path} must hold exactly one of {list(POSE_KEYS)}, has {present or 'none'}"
        )
    key = present[0]
    a = np.asarray(arrays[key])
    if not np.issubdtype(a.dtype, np.number):
        raise PoseBankError(f"pose bank {path}: '{key}' is {a.dtype}, not numeric")
    if a.ndim == 0 or a.shape[0] == 0:
        raise PoseBankError(f"pose bank {path}: '{key}' is empty")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        bad = int(np.argwhere((~np.isfinite(a.reshape(a.shape[0], -1))).any(1))[0, 0])
        raise PoseBankError(f"pose bank {path}: '{key}' contains NaN or inf (first at pose {bad})")
    if key == "pose_6d":
        mats = _rot6d(path, key, _body_joints(path, key, a, 6))
    elif key == "poses":
        mats = axis_angle_to_matrix(torch.from_numpy(_body_joints(path, key, a, 3))).numpy()
    else:
        if a.shape[-2:] != (3, 3):
            raise PoseBankError(
                f"pose bank {path}: '{key}' has shape {a.shape}; expected (N, 34, 3, 3)"
            )
        mats = _body_joints(path, key, a.reshape(a.shape[0], -1, 9), 9).reshape(
            a.shape[0], -1, 3, 3
        )
        err = np.abs(mats @ np.swapaxes(mats, -1, -2) - np.eye(3)).max(axis=(-1, -2))
        det = np.linalg.det(mats)
        bad = np.argwhere((err > 1e-3) | (det < 0.99))
        if bad.size:
            raise PoseBankError(
                f"pose bank {path}: '{key}' pose {int(bad[0, 0])} joint {int(bad[0, 1])} "
                f"is not a rotation matrix (|RRᵀ−I| = {err[tuple(bad[0])]:.3g})"
            )
    orient = _orientations(path, arrays["orient_6d"]) if "orient_6d" in arrays else None
    postures = None
    if "postures" in arrays:
        postures = np.asarray(arrays["postures"]).astype(str).reshape(-1)
        if postures.shape[0] != mats.shape[0]:
            raise PoseBankError(
                f"pose bank {path}: 'postures' has {postures.shape[0]} entries for "
                f"{mats.shape[0]} poses"
            )
    return mats, postures, orient


class BankPoseSampler:
    """Uniform draws from a pose bank; rotations re-expressed in the body model's frame.

    ``orientation`` (see the module docstring): ``"bank"`` draws return the bank's model → camera
    global orientation, ``"view"`` draws return None (upright; the camera sampler adds the view).
    """

    name = "bank"

    def __init__(
        self,
        path: str | os.PathLike,
        body_model,
        orientation: str = "bank",
        bank_canonical_rotation: np.ndarray | None = None,
    ):
        if orientation not in ORIENTATIONS:
            raise InputError(
                f"pose bank orientation must be one of {ORIENTATIONS}, got {orientation!r}"
            )
        self.path = Path(path)
        mats, self.postures, orient = load_pose_bank(self.path)
        if orientation == "bank" and orient is None:
            raise PoseBankError(
                f"pose bank {self.path} has no 'orient_6d' for orientation 'bank' (GenZoo's); "
                "use orientation 'view' to draw the viewpoint with the yaw/pitch sampler"
            )
        c_model = np.asarray(body_model.canonical_rotation, dtype=np.float64)
        if bank_canonical_rotation is not None:
            # bank frame → canonical → model frame: a bank recorded on SMAL posing the procedural model.
            c_bank = np.asarray(bank_canonical_rotation, dtype=np.float64)
            mats = canonical_to_model(
                np.einsum("ij,...jk,lk->...il", c_bank, mats, c_bank), c_model
            )
            orient = None if orient is None else orient @ c_bank.T @ c_model
        self.orientation = orientation
        self.canonical_rotation = c_model
        self.body_pose = mats
        self.global_orient = orient if orientation == "bank" else None
        self.model_files = {"pose_bank": file_sha256(self.path)}

    def __len__(self) -> int:
        return self.body_pose.shape[0]

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray, str]:
        i = int(rng.integers(len(self)))
        posture = str(self.postures[i]) if self.postures is not None else "bank"
        orient = None
        if self.global_orient is not None:
            orient = self.global_orient[int(rng.integers(len(self.global_orient)))].copy()
        return orient, self.body_pose[i].copy(), posture

    def posture_labels(self) -> np.ndarray:
        """(N,) the posture of every row ("bank" for a bank without ``postures``)."""
        return self.postures if self.postures is not None else np.full(len(self), "bank")

    def view_labels(self) -> np.ndarray:
        """(M,) the "yaw bin|pitch bin" of every ``orient_6d`` row as this sampler poses it."""
        angles = np.array([view_angles(r, self.canonical_rotation) for r in self.global_orient])
        return np.array(
            [
                f"{YAW_BINS[int(y)]}|{PITCH_BINS[int(p)]}"
                for y, p in zip(yaw_bin(angles[:, 0]), pitch_bin(angles[:, 1]))
            ]
        )

    def under_plan(self, plan: PartitionPlan) -> PlannedBankSampler:
        """This bank drawn under ``plan`` (see the module docstring)."""
        return PlannedBankSampler(self, plan)


class _TiltedRows:
    """Row draws whose level frequencies follow a proposal: row ``i`` of level ``k`` has probability
    ``q_k / n_k``; ``weight[k]`` is the level's bank base / proposal (``(n_k / N) / q_k``)."""

    def __init__(self, labels: np.ndarray, tilt: dict[str, float]):
        levels, counts = np.unique(labels, return_counts=True)
        base = dict(zip(levels.tolist(), (counts / counts.sum()).tolist()))
        q = tilted_proposal(base, tilt)
        n = dict(zip(levels.tolist(), counts.tolist()))
        self.labels = labels
        self.p = np.array([q[k] / n[k] for k in labels.tolist()])
        self.p /= self.p.sum()
        self.weight = {k: base[k] / q[k] for k in base}

    def draw(self, rng: np.random.Generator) -> tuple[int, float]:
        i = int(rng.choice(len(self.p), p=self.p))
        return i, self.weight[str(self.labels[i])]


class PlannedBankSampler:
    """A :class:`BankPoseSampler` drawing postures and ``orient_6d`` views from a plan's tilt.

    ``planned_factors``: the plan's factors this sampler draws ("posture" when the bank names its
    postures, "yaw_bin" and "pitch_bin" when it gives orientations); the others keep their base.
    """

    name = "bank"

    def __init__(self, bank: BankPoseSampler, plan: PartitionPlan):
        self.bank = bank
        self.orientation = bank.orientation
        self.model_files = bank.model_files
        posture_tilt = plan.tilt("posture") if bank.postures is not None else {}
        self.poses = _TiltedRows(bank.posture_labels(), posture_tilt)
        yaw, pitch = plan.tilt("yaw_bin"), plan.tilt("pitch_bin")
        self.views = None
        if bank.global_orient is not None:
            labels = bank.view_labels()
            pair_tilt = {}
            for label in set(labels.tolist()):
                y, p = label.split("|")
                pair_tilt[label] = yaw.get(y, 1.0) * pitch.get(p, 1.0)
            self.views = _TiltedRows(labels, pair_tilt)
        self.planned_factors = (("posture",) if posture_tilt else ()) + (
            ("yaw_bin", "pitch_bin") if self.views is not None and (yaw or pitch) else ()
        )

    def sample_weighted(
        self, rng: np.random.Generator
    ) -> tuple[np.ndarray | None, np.ndarray, str, float]:
        """(orientation or None, body_pose (34, 3, 3), posture, bank base / proposal)."""
        i, weight = self.poses.draw(rng)
        orient = None
        if self.views is not None:
            m, view_weight = self.views.draw(rng)
            orient, weight = self.bank.global_orient[m].copy(), weight * view_weight
        posture = str(self.poses.labels[i])
        return orient, self.bank.body_pose[i].copy(), posture, float(weight)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray, str]:
        return self.sample_weighted(rng)[:3]
