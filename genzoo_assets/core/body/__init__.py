"""SMAL-family body model: loading (SMAL / SMAL+ / npz), batched LBS, keypoints, procedural default.

The names below load on first use (PEP 562), so that importing a torch-free submodule such as
``skeleton`` does not import the torch-backed model: the Dagster definitions load without torch.
"""

import importlib

_EXPORTS = {
    "BodyModel": ".model",
    "BodyModelError": ".model",
    "BodyOutput": ".model",
    "KEYPOINT_NAMES": ".skeleton",
    "PROCEDURAL_SHAPE_AXES": ".procedural",
    "SMAL_JOINT_NAMES": ".skeleton",
    "body_info": ".info",
    "load_body_model": ".io",
    "procedural_body_model": ".procedural",
    "resolve_body_model": ".info",
    "save_body_model": ".io",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
