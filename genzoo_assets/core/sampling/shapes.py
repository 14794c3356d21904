"""Shape samplers: one interface, backends chosen by name from config.

A sampler turns a species-table row into one betas vector of the body model. ``model_files``
(role → sha256) goes into each sample's provenance.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from genzoo_assets.core.errors import InputError

SHAPE_BACKENDS = ("prior", "clip_flow")


@runtime_checkable
class ShapeSampler(Protocol):
    name: str
    model_files: dict[str, str]
    beta_limit: float  # every sample has |beta| <= beta_limit (clipped or redrawn): the stored-data check's bound

    def sample(self, species_row: dict, rng: np.random.Generator) -> np.ndarray:
        """Betas (num_betas,) float64 for one animal of the row's species."""
        ...


def make_shape_sampler(name: str, body_model, **options) -> ShapeSampler:
    """Build the shape backend ``name`` ("prior" default/offline, "clip_flow" the paper's)."""
    if name == "prior":
        from genzoo_assets.core.sampling.shape_prior import PriorShapeSampler

        return PriorShapeSampler(body_model, **options)
    if name == "clip_flow":
        from genzoo_assets.core.sampling.shape_clip_flow import ClipFlowShapeSampler

        return ClipFlowShapeSampler(num_betas=int(body_model.num_betas), **options)
    raise InputError(f"unknown shape sampler {name!r}; choose one of {SHAPE_BACKENDS}")
