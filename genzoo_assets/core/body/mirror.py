"""Left/right mirroring of a posed body: what a horizontally flipped training image shows.

A body model is mirror-symmetric when reflecting its rest skeleton across the sagittal plane maps
each joint onto its left/right partner for every shape. Then a pose mirrors joint by joint: with
``M`` the reflection across that plane (in the model frame) and ``F`` the camera's horizontal
reflection, the mirrored body has local rotations ``M R_j M`` at the partner joint ``j'`` and global
orientation ``F R_0 M``, and the same betas. The procedural model is built symmetric; a loaded
SMAL file is checked (:func:`asymmetry`) before anything relies on it.
"""

from __future__ import annotations

import numpy as np
import torch

from genzoo_assets.core.body.skeleton import KEYPOINT_NAMES, SMAL_JOINT_NAMES
from genzoo_assets.core.errors import InputError

_SIDES = (("left_", "right_"), ("LLeg", "RLeg"), ("LFoot", "RFoot"), ("LEar", "REar"))
CAMERA_FLIP = np.diag([-1.0, 1.0, 1.0])  # image x → −x in the camera frame


def partner_indices(names) -> np.ndarray:
    """(N,) index of each name's left/right partner (itself on the midline)."""
    index = {n: i for i, n in enumerate(names)}
    swap = {a: b for pair in _SIDES for a, b in (pair, pair[::-1])}
    out = []
    for name in names:
        prefix = next((p for p in swap if name.startswith(p)), None)
        partner = swap[prefix] + name[len(prefix) :] if prefix else name
        if partner not in index:
            raise ValueError(f"{name!r} has no partner {partner!r} among the names")
        out.append(index[partner])
    return np.asarray(out)


JOINT_PARTNERS = partner_indices(SMAL_JOINT_NAMES)  # (35,)
KEYPOINT_PARTNERS = partner_indices(KEYPOINT_NAMES)  # (26,)


def sagittal_reflection(canonical_rotation: np.ndarray) -> np.ndarray:
    """(3, 3) reflection across the body's sagittal plane, in the model frame.

    The canonical frame's lateral axis is +z (``procedural_layout``); ``canonical_rotation`` maps
    model → canonical, so the model frame's lateral axis is its third row.
    """
    lateral = np.asarray(canonical_rotation, dtype=np.float64)[2]
    return np.eye(3) - 2.0 * np.outer(lateral, lateral)


def mirror_pose(rotmats: torch.Tensor, reflection: np.ndarray) -> torch.Tensor:
    """(35, 3, 3) rotations (global orientation first) → those of the mirrored body, camera-flipped."""
    m = torch.as_tensor(reflection, dtype=rotmats.dtype)
    out = m @ rotmats[JOINT_PARTNERS] @ m
    out[0] = torch.as_tensor(CAMERA_FLIP, dtype=rotmats.dtype) @ rotmats[0] @ m
    return out


def mirror_points(points: np.ndarray, partners: np.ndarray) -> np.ndarray:
    """(N, D) camera-frame or crop points, D ≥ 1: x negated and each row swapped with its partner's."""
    out = np.asarray(points)[partners].copy()
    out[:, 0] = -out[:, 0]
    return out


@torch.no_grad()
def asymmetry(body_model, samples: int = 4, seed: int = 0) -> float:
    """Largest distance of a rest-pose joint from its mirrored partner, over zero and random betas,
    as a fraction of the body's extent: 0 for an exactly symmetric model."""
    gen = torch.Generator().manual_seed(seed)
    betas = torch.cat(
        [
            torch.zeros(1, body_model.num_betas),
            torch.randn(samples, body_model.num_betas, generator=gen),
        ]
    )
    betas = betas.to(body_model.dtype)
    eye = torch.eye(3, dtype=body_model.dtype)
    out = body_model(
        betas, eye.expand(len(betas), 3, 3), eye.expand(len(betas), body_model.num_joints - 1, 3, 3)
    )
    joints = out.joints
    m = torch.as_tensor(sagittal_reflection(body_model.canonical_rotation), dtype=joints.dtype)
    mirrored = (joints @ m.T)[:, JOINT_PARTNERS]
    extent = (joints.amax(dim=1) - joints.amin(dim=1)).norm(dim=-1)
    return float(((joints - mirrored).norm(dim=-1).amax(dim=1) / extent).max())


MIRROR_TOLERANCE = 1e-3  # asymmetry above which flipped labels would be visibly wrong


def checked_reflection(body_model) -> np.ndarray:
    """The sagittal reflection of ``body_model``, refusing a model that is not mirror-symmetric."""
    off = asymmetry(body_model)
    if off > MIRROR_TOLERANCE:
        raise InputError(
            f"body model {getattr(body_model, 'source', body_model)} is not mirror-symmetric: a rest joint "
            f"lies {off:.2%} of the body's extent from its mirrored partner (tolerance "
            f"{MIRROR_TOLERANCE:.1%}), so a flipped image would carry wrong labels; train with flip 0"
        )
    return sagittal_reflection(body_model.canonical_rotation)
