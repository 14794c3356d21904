"""The paper's shape backend (AWOL / GenZoo): species → CLIP Gaussian → RealNVP flow → betas.

Per draw: sample an embedding from the species' Gaussian, L2-normalise it, sample base noise
N(0, σ²) (GenZoo: σ = 3) and run the flow in its inverse direction; a shape with any
|β| > ``beta_limit`` is implausible and redrawn, up to ``max_tries`` times.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.provenance import file_sha256
from genzoo_assets.core.sampling.clip_text import (
    AttributesError,
    ClipTextEncoder,
    SpeciesGaussian,
    load_animal_attributes,
    species_gaussian_from_text,
)
from genzoo_assets.core.sampling.flow import ConditionalRealNVP, load_flow_checkpoint
from genzoo_assets.core.sampling.species_labels import common_name, species_label


class ShapeResampleError(RuntimeError):
    """The flow kept producing betas beyond the plausibility limit."""


class ClipFlowShapeSampler:
    name = "clip_flow"

    def __init__(
        self,
        num_betas: int,
        flow_checkpoint: str | os.PathLike | None = None,
        clip_dir: str | os.PathLike | None = None,
        attributes: str | os.PathLike | None = None,
        flow: ConditionalRealNVP | None = None,
        sigma: float = 3.0,
        num_descriptions: int = 64,
        beta_limit: float = 10.0,
        max_tries: int = 10,
        device: str = "cpu",
    ):
        self.model_files: dict[str, str] = {}
        if flow is None:
            if flow_checkpoint is None:
                raise InputError(
                    "clip_flow shape sampler needs flow_checkpoint (AWOL's RealNVP state dict, "
                    "e.g. submission_animal_realnvp_mask_pred_net_6000.pth)"
                )
            flow = load_flow_checkpoint(flow_checkpoint, expected_num_betas=num_betas)
            self.model_files["flow"] = file_sha256(flow_checkpoint)
        if flow.num_inputs != num_betas:
            raise InputError(
                f"flow produces {flow.num_inputs} betas but the body model has {num_betas}"
            )
        self.flow = flow.eval().to(device)
        self.attributes = None
        self.encoder = None
        if attributes is not None:
            self.attributes = load_animal_attributes(attributes)
            self.model_files["animal_attributes"] = file_sha256(attributes)
            cond_dim = self.attributes.dim
        elif clip_dir is not None:
            self.encoder = ClipTextEncoder(clip_dir, device=device)
            self.model_files["clip_text"] = file_sha256(clip_dir)
            cond_dim = self.encoder.dim
        else:
            raise InputError(
                "clip_flow shape sampler needs attributes (GenZoo's animal_attributes.npz) or "
                "clip_dir (a local CLIP text model) to build species Gaussians"
            )
        if cond_dim != flow.num_cond:
            source = attributes if attributes is not None else clip_dir
            raise InputError(
                f"{source} gives {cond_dim}-d embeddings but the flow is conditioned on "
                f"{flow.num_cond}-d ones"
            )
        self.num_betas, self.sigma, self.device = num_betas, float(sigma), device
        self.num_descriptions = int(num_descriptions)
        self.beta_limit, self.max_tries = float(beta_limit), int(max_tries)
        self._gaussians: dict[str, SpeciesGaussian] = {}
        self.last_tries = 0

    def species_gaussian(self, species_row: dict) -> SpeciesGaussian:
        name = common_name(species_row)
        if name not in self._gaussians:
            if self.attributes is not None:
                try:
                    self._gaussians[name] = self.attributes.gaussian(name)
                except AttributesError as exc:
                    raise AttributesError(
                        f"species {species_label(species_row)!r}: {exc}"
                    ) from None
            else:
                self._gaussians[name] = species_gaussian_from_text(
                    self.encoder, name, self.num_descriptions
                )
        return self._gaussians[name]

    def sample(self, species_row: dict, rng: np.random.Generator) -> np.ndarray:
        gaussian = self.species_gaussian(species_row)
        worst = float("inf")
        for attempt in range(1, self.max_tries + 1):
            emb = gaussian.sample(rng)
            noise = self.sigma * rng.standard_normal(self.num_betas)
            cond = torch.as_tensor(emb[None], dtype=torch.float32, device=self.device)
            z = torch.as_tensor(noise[None], dtype=torch.float32, device=self.device)
            betas = self.flow.sample(cond, z)[0].double().cpu().numpy()
            self.last_tries = attempt
            if np.isfinite(betas).all() and np.abs(betas).max() <= self.beta_limit:
                return betas
            worst = float(np.nanmax(np.abs(betas))) if np.isfinite(betas).any() else float("nan")
        raise ShapeResampleError(
            f"species {species_label(species_row)!r}: {self.max_tries} flow samples all had some |beta| > "
            f"{self.beta_limit} (last max |beta| = {worst:.3g}); check the flow checkpoint and the species' "
            f"CLIP Gaussian"
        )
