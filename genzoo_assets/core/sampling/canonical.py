"""The canonical body frame (+x forward, +y up, +z the animal's right) and model coordinates.

Samplers reason in the canonical frame; ``BodyModel.canonical_rotation`` C maps model coordinates into
it (docs/ARCHITECTURE.md, "Frames and conventions").
"""

from __future__ import annotations

import numpy as np


def canonical_to_model(rotations: np.ndarray, canonical_rotation: np.ndarray) -> np.ndarray:
    """Rotations written in the canonical frame → model coordinates: ``Cᵀ · R · C``."""
    c = np.asarray(canonical_rotation, dtype=np.float64)
    return np.einsum("ji,...jk,kl->...il", c, rotations, c)
