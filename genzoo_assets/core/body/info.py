"""Which body model a setting names, and one-line facts about it (``genzoo body info``)."""

from __future__ import annotations

from .io import load_body_model
from .model import BodyModel
from .procedural import procedural_body_model


def resolve_body_model(spec: str) -> BodyModel:
    """``"procedural"`` (any case, spaces ignored) -> the embedded model; anything else is a model file path.

    The one place a body-model setting (``GenZooSettings.body_model``, the CLI) becomes a model.
    """
    return (
        procedural_body_model()
        if str(spec).strip().lower() == "procedural"
        else load_body_model(spec)
    )


def body_info(spec: str) -> dict:
    """num_vertices, num_faces, num_joints, num_betas, joint_names, source (plus sha256, keypoint_names,
    keypoint_set)."""
    m = resolve_body_model(spec)
    return {
        "num_vertices": m.num_vertices,
        "num_faces": m.num_faces,
        "num_joints": m.num_joints,
        "num_betas": m.num_betas,
        "joint_names": list(m.joint_names),
        "keypoint_names": list(m.keypoint_names),
        "keypoint_set": m.keypoint_set,
        "source": m.source,
        "sha256": m.sha256,
    }
