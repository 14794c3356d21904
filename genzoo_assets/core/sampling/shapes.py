"""Shape samplers: one interface, backends chosen by name from config.

A sampler turns a species-table row into one betas vector of the body model. ``model_files``
(role → sha256) goes into each sample's provenance.
"""

from __future__ import annotations

import re
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


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().casefold()).strip("_")


def species_label(row: dict) -> str:
    """The row's slug, for error messages."""
    return str(
        row.get("species") or row.get("slug") or row.get("common_name") or row.get("name") or "?"
    )


def common_name(row: dict) -> str:
    """The human name a text encoder understands ("Border Collie", "giraffe")."""
    for key in ("common_name", "name", "breed"):
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    slug = row.get("species") or row.get("slug")
    if isinstance(slug, str) and slug.strip():
        return slug.replace("_", " ").replace("-", " ").strip()
    raise ValueError(f"species row has no common_name/name/species field: {sorted(row)}")


def taxon_keys(row: dict) -> dict[str, str]:
    """Lower-case slugs of the row's breed / family / order ('' when absent)."""
    out = {}
    for key in ("breed", "family", "order"):
        value = row.get(key)
        out[key] = _slug(value) if isinstance(value, str) else ""
    return out


def make_shape_sampler(name: str, body_model, **options) -> ShapeSampler:
    """Build the shape backend ``name`` ("prior" default/offline, "clip_flow" the paper's)."""
    if name == "prior":
        from genzoo_assets.core.sampling.shape_prior import PriorShapeSampler

        return PriorShapeSampler(body_model, **options)
    if name == "clip_flow":
        from genzoo_assets.core.sampling.shape_clip_flow import ClipFlowShapeSampler

        return ClipFlowShapeSampler(num_betas=int(body_model.num_betas), **options)
    raise InputError(f"unknown shape sampler {name!r}; choose one of {SHAPE_BACKENDS}")
