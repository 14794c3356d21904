"""What every image generator takes and gives: one request per sample, PIL images back.

A request carries the control renders of one sample (the conditioning of ControlNet backends)
and, optionally, the posed mesh and camera (what render-based backends draw from), so the
partition function can drive any backend the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from genzoo_assets.core.sampling.camera_model import Camera


@dataclass
class GenerationRequest:
    sample_id: str
    prompt: str
    canny: np.ndarray  # (H, W) uint8, 255 on edges
    depth: np.ndarray  # (H, W) uint8, inverted min–max (near bright)
    mask: np.ndarray  # (H, W) bool, the animal's silhouette
    normal_rgb: np.ndarray  # (H, W, 3) uint8, normal-coloured render
    seed: int
    vertices: np.ndarray | None = None  # (V, 3) posed, camera frame (OpenCV)
    faces: np.ndarray | None = None  # (F, 3) int
    camera: Camera | None = None
    canonical_vertices: np.ndarray | None = None  # (V, 3) same body unposed, canonical frame
    species: str = ""
    species_info: dict = field(default_factory=dict)  # e.g. family, order, breed, common name

    def __post_init__(self):
        h, w = np.shape(self.canny)[:2]
        for name, shape in (("depth", (h, w)), ("mask", (h, w)), ("normal_rgb", (h, w, 3))):
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(
                    f"request {self.sample_id}: {name} has shape {np.shape(getattr(self, name))}, "
                    f"expected {shape} to match canny"
                )

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the controls."""
        return tuple(np.shape(self.canny)[:2])


@runtime_checkable
class ImageGenerator(Protocol):
    """A backend of the images stage. ``generate`` returns one RGB image per request, in order."""

    name: str

    @property
    def model_hashes(self) -> dict[str, str]:  # role -> sha256 or "hf:<repo>@<revision>"
        ...

    @property
    def params(self) -> dict:  # steps, guidance, cond_scales, ... (recorded per row)
        ...

    def generate(self, batch: list[GenerationRequest]) -> list[Image.Image]: ...
