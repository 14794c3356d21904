"""The default, offline shape backend: a Gaussian over betas per taxon.

Procedural body model: means/stds along its semantic axes (``PROCEDURAL_SHAPE_AXES``) per breed →
family → order → global from ``data/taxon_shape_prior.json``, so a giraffe gets a long neck and a
pig a big girth without any learned model. SMAL: the five shape clusters of SMAL's data file
(``cluster_means`` 5×41, ``cluster_cov`` 5×41×41: felidae, canidae, equidae, bovidae,
hippopotamidae); a species is drawn from the cluster of its family.
"""

from __future__ import annotations

import functools
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from genzoo_assets.core.body.unpickle import UnpickleFailed, UnpickleRefused, safe_load, to_array
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.provenance import file_sha256
from genzoo_assets.core.sampling.species_labels import species_label, taxon_keys


class SmalDataError(InputError):
    """SMAL's shape-cluster data file is missing or malformed."""


@functools.lru_cache(maxsize=1)
def taxon_shape_prior() -> dict:
    text = (
        resources.files("genzoo_assets.core.sampling")
        .joinpath("data/taxon_shape_prior.json")
        .read_text()
    )
    return json.loads(text)


def prior_for(row: dict, prior: dict | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mean, std) over the semantic axes for a species row, and the levels that contributed."""
    prior = prior or taxon_shape_prior()
    axes = prior["axes"]
    mean = np.zeros(len(axes))
    std = np.ones(len(axes))
    keys = taxon_keys(row)
    levels = [("global", prior["global"])]
    for level, table in (("order", "orders"), ("family", "families"), ("breed", "breeds")):
        entry = prior[table].get(keys[level])
        if entry is None and level == "breed":
            entry = prior[table].get(taxon_keys({"breed": row.get("common_name") or ""})["breed"])
        if entry is not None:
            levels.append((f"{level}:{keys[level] or row.get('common_name')}", entry))
    for _, entry in levels:
        if "std_all" in entry:
            std[:] = float(entry["std_all"])
        for i, axis in enumerate(axes):
            if axis in entry.get("mean", {}):
                mean[i] = float(entry["mean"][axis])
            if axis in entry.get("std", {}):
                std[i] = float(entry["std"][axis])
    return mean, std, [name for name, _ in levels]


def _as_array(value, key: str) -> np.ndarray:
    return np.asarray(to_array(value, key), dtype=np.float64)


def load_smal_clusters(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``cluster_means`` (K, B) and ``cluster_cov`` (K, B, B) from ``smal_CVPR2017_data.pkl``."""
    path = Path(path)
    if not path.is_file():
        raise SmalDataError(f"SMAL data file {path} does not exist")
    try:
        data = safe_load(path.read_bytes())
    except UnpickleRefused as exc:
        raise SmalDataError(f"SMAL data file {path}: {exc}") from exc
    except (UnpickleFailed, OSError) as exc:
        raise SmalDataError(f"SMAL data file {path} cannot be unpickled ({exc})") from exc
    if not isinstance(data, dict) or "cluster_means" not in data or "cluster_cov" not in data:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise SmalDataError(
            f"SMAL data file {path} lacks 'cluster_means'/'cluster_cov' (has {keys})"
        )
    try:
        means = np.stack([_as_array(m, "cluster_means").reshape(-1) for m in data["cluster_means"]])
        covs = np.stack([_as_array(c, "cluster_cov") for c in data["cluster_cov"]])
    except (ValueError, TypeError) as exc:
        raise SmalDataError(
            f"SMAL data file {path}: cluster arrays are ragged or not numeric: {exc}"
        ) from exc
    k, b = means.shape
    if covs.shape != (k, b, b):
        raise SmalDataError(
            f"SMAL data file {path}: cluster_cov is {covs.shape}, expected ({k}, {b}, {b})"
        )
    if not (np.isfinite(means).all() and np.isfinite(covs).all()):
        raise SmalDataError(f"SMAL data file {path}: cluster arrays contain NaN or inf")
    return means, covs


class PriorShapeSampler:
    """Per-taxon Gaussian betas; offline and needs no learned model."""

    name = "prior"

    def __init__(
        self,
        body_model,
        smal_data: str | os.PathLike | None = None,
        beta_limit: float = 5.0,
        std_scale: float = 1.0,
        semantic_axes: bool | None = None,
    ):
        """``semantic_axes``: the model's first betas are ``PROCEDURAL_SHAPE_AXES`` (default: its
        source is the procedural model; pass True for a procedural model saved to a file)."""
        self.num_betas = int(body_model.num_betas)
        self.beta_limit = float(beta_limit)
        self.std_scale = float(std_scale)
        self.model_files: dict[str, str] = {}
        self.clusters = None
        if smal_data is not None:
            self.clusters = load_smal_clusters(smal_data)
            self.model_files["smal_data"] = file_sha256(smal_data)
        elif not (
            semantic_axes
            if semantic_axes is not None
            else str(getattr(body_model, "source", "")).startswith("procedural")
        ):
            raise SmalDataError(
                f"the prior shape sampler needs smal_data (SMAL's smal_CVPR2017_data.pkl) for the body model "
                f"{getattr(body_model, 'source', '?')!r}: its semantic-axis prior only fits the procedural model"
            )
        elif self.num_betas < len(taxon_shape_prior()["axes"]):
            raise ValueError(
                f"procedural body model has {self.num_betas} betas, fewer than the prior's axes"
            )

    def cluster_index(self, row: dict) -> int:
        table = taxon_shape_prior()["smal_clusters"]
        keys = taxon_keys(row)
        index = table["families"].get(
            keys["family"], table["orders"].get(keys["order"], table["default"])
        )
        return min(int(index), self.clusters[0].shape[0] - 1)

    def sample(self, species_row: dict, rng: np.random.Generator) -> np.ndarray:
        if self.clusters is not None:
            means, covs = self.clusters
            k = self.cluster_index(species_row)
            draw = rng.multivariate_normal(means[k], covs[k] * self.std_scale**2, method="eigh")
            betas = np.zeros(self.num_betas)
            n = min(self.num_betas, draw.shape[0])
            betas[:n] = draw[:n]
        else:
            prior = taxon_shape_prior()
            mean, std, _ = prior_for(species_row, prior)
            axes = rng.normal(mean, std * self.std_scale)
            rest = rng.normal(
                0.0, prior["residual_std"] * self.std_scale, self.num_betas - len(axes)
            )
            betas = np.concatenate([axes, rest])
        if not np.isfinite(betas).all():
            raise ValueError(
                f"prior shape sampler produced non-finite betas for species {species_label(species_row)!r}"
            )
        return np.clip(betas, -self.beta_limit, self.beta_limit)
