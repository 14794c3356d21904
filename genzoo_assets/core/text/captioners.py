"""Orientation captions: the sentence that tells the image model which way the animal faces.

GenZoo asked a VLM (Molmo-7B) about each raw render; :class:`GeometricCaptioner` states the same
thing exactly from the ground-truth rotation, so the default pipeline needs no weights and never
mislabels a view. Yaw/pitch follow docs/ARCHITECTURE.md (yaw 0 = facing the camera, +90 = facing
image right, 180 = away; pitch > 0 = seen from above), read by ``sampling.camera_model.view_angles``.

Thresholds (degrees, yaw bins are symmetric for left/right):

- ``|yaw| <= 22.5`` facing towards the camera; ``<= 67.5`` three-quarter view from the
  front-left/right; ``<= 112.5`` facing left/right; ``<= 157.5`` three-quarter view from the
  rear-left/right; beyond, facing away. The side named is the side of the image the head points
  to, which is also the flank the camera sees.
- ``|pitch| <= 10`` at eye level; ``<= 35`` slightly from above/below; ``<= 65`` from
  above/below; beyond, from directly above/below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from genzoo_assets.core.sampling.camera_model import view_angles
from genzoo_assets.core.text.vocabulary import load_data

YAW_FRONT_DEG = 22.5
YAW_FRONT_THREE_QUARTER_DEG = 67.5
YAW_PROFILE_DEG = 112.5
YAW_REAR_THREE_QUARTER_DEG = 157.5
PITCH_EYE_LEVEL_DEG = 10.0
PITCH_SLIGHT_DEG = 35.0
PITCH_STEEP_DEG = 65.0


@dataclass
class CaptionInput:
    """What a captioner may look at for one sample."""

    global_orient: np.ndarray  # (3, 3) model -> camera rotation
    canonical_rotation: np.ndarray  # (3, 3) model -> canonical body frame (BodyModel)
    posture: str = ""
    image: np.ndarray | None = field(default=None, repr=False)  # (H, W, 3) uint8 raw normal render
    species_name: str | None = None


@runtime_checkable
class Captioner(Protocol):
    """Optional attribute ``needs_images`` (default False): caption_partition then loads the renders."""

    name: str
    model_files: dict[str, str]  # role -> sha256 / revision, for provenance

    def caption_batch(self, items: list[CaptionInput]) -> list[str]: ...


def _band(angle_deg: float, bands: tuple[tuple[float, str], ...], beyond: str) -> str:
    """The phrase of the first band whose upper bound |angle| does not exceed."""
    return next((phrase for bound, phrase in bands if abs(angle_deg) <= bound), beyond)


def yaw_phrase(yaw_deg: float) -> str:
    side = "right" if yaw_deg > 0 else "left"
    return _band(
        yaw_deg,
        (
            (YAW_FRONT_DEG, "facing towards the camera"),
            (YAW_FRONT_THREE_QUARTER_DEG, f"in a three-quarter view from the front-{side}"),
            (YAW_PROFILE_DEG, f"facing {side}"),
            (YAW_REAR_THREE_QUARTER_DEG, f"in a three-quarter view from the rear-{side}"),
        ),
        "facing away from the camera",
    )


def pitch_phrase(pitch_deg: float) -> str:
    where = "above" if pitch_deg > 0 else "below"
    return _band(
        pitch_deg,
        (
            (PITCH_EYE_LEVEL_DEG, "seen at eye level"),
            (PITCH_SLIGHT_DEG, f"seen slightly from {where}"),
            (PITCH_STEEP_DEG, f"seen from {where}"),
        ),
        f"seen from directly {where}",
    )


def posture_phrase(posture: str | None) -> str:
    """Caption words for a ``pose_params.posture`` label ("lying" -> "lying down")."""
    label = (posture or "").strip().lower()
    if not label:
        return ""
    return load_data("postures.yaml").get(label, label.replace("_", " "))


def describe_view(yaw_deg: float, pitch_deg: float, posture: str | None = None) -> str:
    """One caption sentence, e.g. "The animal is facing right, seen slightly from above, standing."."""
    parts = [yaw_phrase(yaw_deg), pitch_phrase(pitch_deg)]
    words = posture_phrase(posture)
    if words:
        parts.append(words)
    return "The animal is " + ", ".join(parts) + "."


def _rotation(value, what: str) -> np.ndarray:
    r = np.asarray(value, dtype=np.float64)
    if r.shape != (3, 3) or not np.all(np.isfinite(r)):
        raise ValueError(f"caption input {what} must be a finite 3x3 rotation, got shape {r.shape}")
    return r


class GeometricCaptioner:
    """Exact captions from the ground-truth orientation (the default; no model needed)."""

    name = "geometric"
    needs_images = False

    def __init__(self) -> None:
        self.model_files: dict[str, str] = {}

    def caption_batch(self, items: list[CaptionInput]) -> list[str]:
        return [text for text, _ in self.caption_batch_with_backend(items)]

    def caption_batch_with_backend(self, items: list[CaptionInput]) -> list[tuple[str, str]]:
        out = []
        for item in items:
            yaw, pitch = view_angles(
                _rotation(item.global_orient, "global_orient"),
                _rotation(item.canonical_rotation, "canonical_rotation"),
            )
            out.append((describe_view(yaw, pitch, item.posture), self.name))
        return out
