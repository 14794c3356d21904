"""SMAL-family body model: loading (SMAL / SMAL+ / npz), batched LBS, keypoints, procedural default."""

from .info import body_info, resolve_body_model
from .io import load_body_model, save_body_model
from .model import BodyModel, BodyModelError, BodyOutput
from .procedural import PROCEDURAL_SHAPE_AXES, procedural_body_model
from .skeleton import KEYPOINT_NAMES, SMAL_JOINT_NAMES

__all__ = [
    "BodyModel",
    "BodyModelError",
    "BodyOutput",
    "KEYPOINT_NAMES",
    "PROCEDURAL_SHAPE_AXES",
    "SMAL_JOINT_NAMES",
    "body_info",
    "load_body_model",
    "procedural_body_model",
    "resolve_body_model",
    "save_body_model",
]
