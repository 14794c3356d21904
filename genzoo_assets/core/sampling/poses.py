"""Pose samplers: one interface, backends chosen by name from config.

A draw is ``(orientation, body_pose, posture)``: the 34 joint rotations (34, 3, 3) in MODEL
coordinates, a posture name, and an orientation whose meaning the sampler's ``orientation``
attribute gives:

- ``"view"``: the posture's own orientation as a rotation of the canonical frame (sitting pitches
  the trunk up, lying on the side rolls it; None = upright); the camera sampler draws the
  viewpoint (yaw/pitch) and composes it on top.
- ``"bank"``: the full model → camera global orientation (GenZoo's ``orient_6d``); the camera
  sampler only frames the body.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from genzoo_assets.core.errors import InputError

POSE_BACKENDS = ("procedural", "bank")


@runtime_checkable
class PoseSampler(Protocol):
    name: str
    model_files: dict[str, str]
    orientation: str  # "view" | "bank", see the module docstring

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray, str]: ...


def make_pose_sampler(name: str, body_model, **options) -> PoseSampler:
    """Build the pose backend ``name`` ("procedural" default, "bank" for GenZoo-style npz banks)."""
    if name == "procedural":
        from genzoo_assets.core.sampling.pose_procedural import ProceduralPoseSampler

        if options.pop("orientation", "view") != "view":
            raise InputError(
                "pose backend 'procedural' draws postures, not global orientations: orientation "
                "'bank' needs the bank backend (a pose bank with orient_6d)"
            )
        return ProceduralPoseSampler(body_model, **options)
    if name == "bank":
        from genzoo_assets.core.sampling.pose_bank import BankPoseSampler

        if "path" not in options:
            raise InputError(
                "bank pose sampler needs path= (an .npz pose bank such as GenZoo's dog_poses.npz)"
            )
        return BankPoseSampler(options.pop("path"), body_model, **options)
    raise InputError(f"unknown pose sampler {name!r}; choose one of {POSE_BACKENDS}")
