"""Species as Gaussians in CLIP text space (AWOL / GenZoo).

AWOL conditions its shape flow on a CLIP ViT-B/32 (laion2b_s34b_b79k) text embedding, 512-d and
L2-normalised. GenZoo turns a species into a distribution by embedding many appearance
descriptions of it and fitting a Gaussian (its ``animal_attributes.npz``: ``animals``, ``mean``
(N, 512), ``cov`` (N, 512, 512)). Sampling that Gaussian varies colour, build, age... of one
species while staying inside it.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from genzoo_assets.core.errors import InputError, MissingInputError
from genzoo_assets.core.npzio import read_npz
from genzoo_assets.core.seeds import derive_seed


class AttributesError(InputError):
    """An ``animal_attributes.npz`` file is missing, malformed or lacks a species."""


@dataclass(frozen=True)
class SpeciesGaussian:
    """A Gaussian over L2-normalised CLIP text embeddings of one species."""

    name: str
    mean: np.ndarray  # (D,)
    cov: np.ndarray  # (D, D)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One embedding, L2-normalised (the flow was trained on unit vectors)."""
        e = rng.multivariate_normal(self.mean, self.cov, method="eigh")
        return e / max(float(np.linalg.norm(e)), 1e-12)


@functools.lru_cache(maxsize=1)
def appearance_templates() -> dict:
    text = (
        resources.files("genzoo_assets.core.sampling")
        .joinpath("data/appearance_templates.json")
        .read_text()
    )
    return json.loads(text)


def appearance_descriptions(name: str, count: int = 64) -> list[str]:
    """``count`` distinct descriptions of ``name`` (templates × attributes), the same on every run."""
    spec = appearance_templates()
    groups = sorted(spec["attributes"])
    rng = np.random.default_rng(derive_seed("appearance", name))
    out: list[str] = []
    seen: set[str] = set()
    for i in itertools.count():
        if len(out) >= count or i > 50 * count:
            break
        template = spec["templates"][int(rng.integers(len(spec["templates"])))]
        values = {
            g: spec["attributes"][g][int(rng.integers(len(spec["attributes"][g])))] for g in groups
        }
        text = template.format(name=name, **values)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


class ClipTextEncoder:
    """A transformers CLIP text tower + tokenizer from a local directory (offline)."""

    def __init__(self, model_dir: str | os.PathLike, device: str = "cpu"):
        from transformers import AutoTokenizer, CLIPTextModelWithProjection

        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise MissingInputError(f"CLIP text model directory {self.model_dir} does not exist")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(
                str(self.model_dir), local_files_only=True
            )
            self.model = CLIPTextModelWithProjection.from_pretrained(
                str(self.model_dir), local_files_only=True
            )
        except (OSError, ValueError) as exc:
            raise MissingInputError(
                f"CLIP text model directory {self.model_dir} has no loadable CLIPTextModelWithProjection "
                f"+ tokenizer: {exc}"
            ) from exc
        self.model.eval().to(device)
        self.device = device

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), D) float64, each row L2-normalised."""
        max_len = min(int(self.model.config.max_position_embeddings), 77)
        rows = []
        for start in range(0, len(texts), batch_size):
            tok = self.tokenizer(
                texts[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_len,
                return_tensors="pt",
            ).to(self.device)
            emb = self.model(
                input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]
            ).text_embeds
            rows.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        return np.concatenate(rows).astype(np.float64)


def fit_species_gaussian(name: str, embeddings: np.ndarray, ridge: float = 1e-6) -> SpeciesGaussian:
    """Mean and covariance of a species' description embeddings (ridge keeps the cov positive definite)."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] < 2:
        raise InputError(
            f"species {name!r}: need at least 2 embeddings of shape (N, D), got {e.shape}"
        )
    cov = np.cov(e, rowvar=False) + ridge * np.eye(e.shape[1])
    return SpeciesGaussian(name, e.mean(0), cov)


def species_gaussian_from_text(
    encoder: ClipTextEncoder, name: str, count: int = 64
) -> SpeciesGaussian:
    return fit_species_gaussian(name, encoder.embed(appearance_descriptions(name, count)))


class AnimalAttributes:
    """GenZoo's ``animal_attributes.npz``: one CLIP-space Gaussian per named animal."""

    def __init__(self, path: Path, animals: np.ndarray, mean: np.ndarray, cov: np.ndarray):
        self.path, self.animals, self.mean, self.cov = path, animals, mean, cov
        self._index = {str(a): i for i, a in enumerate(animals)}
        self._folded = {str(a).casefold(): i for i, a in enumerate(animals)}

    @property
    def dim(self) -> int:
        return int(self.mean.shape[1])

    def gaussian(self, name: str) -> SpeciesGaussian:
        """The species' Gaussian; names match exactly, else case-insensitively (GenZoo title-cases)."""
        i = self._index.get(name, self._folded.get(name.casefold()))
        if i is None:
            raise AttributesError(
                f"species {name!r} is not in {self.path} ({len(self.animals)} animals, e.g. "
                f"{', '.join(map(str, self.animals[:5]))})"
            )
        return SpeciesGaussian(str(self.animals[i]), self.mean[i], self.cov[i])


def load_animal_attributes(path: str | os.PathLike) -> AnimalAttributes:
    """Read and validate ``animal_attributes.npz`` (``animals`` (N,), ``mean`` (N,D), ``cov`` (N,D,D))."""
    path = Path(path)
    arrays = read_npz(path, "animal attributes file", AttributesError)
    missing = [k for k in ("animals", "mean", "cov") if k not in arrays]
    if missing:
        raise AttributesError(
            f"animal attributes file {path} lacks key(s) {missing} (has {sorted(arrays)})"
        )
    animals, mean, cov = arrays["animals"].reshape(-1), arrays["mean"], arrays["cov"]
    n = animals.shape[0]
    if mean.ndim != 2 or mean.shape[0] != n:
        raise AttributesError(f"{path}: 'mean' must be ({n}, D) for {n} animals, got {mean.shape}")
    d = mean.shape[1]
    if cov.shape != (n, d, d):
        raise AttributesError(f"{path}: 'cov' must be ({n}, {d}, {d}), got {cov.shape}")
    if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise AttributesError(f"{path}: 'mean' or 'cov' contains NaN or inf")
    return AnimalAttributes(
        path, animals.astype(str), mean.astype(np.float64), cov.astype(np.float64)
    )
