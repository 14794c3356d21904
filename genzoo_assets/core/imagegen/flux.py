"""GenZoo's image backend: a diffusers ControlNet pipeline conditioned on Canny + depth.

FLUX.1-dev with the XLabs canny and depth ControlNets, scales [0.2, 0.65], 28 steps, guidance
3.5, 1024², bf16 — the paper's settings. Other diffusers ControlNet pipelines plug in through
``FAMILIES``: SD3, and Qwen-Image with its ControlNet-Union (one network that takes both controls,
what SAM 3D Animal's Herd3D generates with). The ControlNets are loaded one by one and wrapped in
the family's multi-ControlNet class, because saving/loading a pipeline whose controlnet is a
multi-ControlNet fails. Every folder is checked before anything is loaded.

The loaded pipeline is process-resident (:func:`genzoo_assets.core.residency.resident`, keyed by
family, model folders, device, dtype and the load-time speed options): a second partition in the
same process reuses it. Speed settings are in :mod:`.speed`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from genzoo_assets.core.device import resolve_device, resolve_dtype
from genzoo_assets.core.errors import InputError
from genzoo_assets.core.imagegen.base import GenerationRequest
from genzoo_assets.core.imagegen.speed import SpeedOptions, numerics, prepare_pipeline
from genzoo_assets.core.model_dirs import check_model, check_pipeline, resolve_location
from genzoo_assets.core.provenance import file_sha256
from genzoo_assets.core.residency import resident


@dataclass(frozen=True)
class ControlNetFamily:
    """The diffusers classes of one model family, by name (imported only when used)."""

    pipeline: str
    multi_controlnet: str
    controlnet: str
    base_prefix: str  # model_index.json ``_class_name`` prefix of the base model
    max_sequence_length: int
    size_multiple: int  # generated height/width must be a multiple of this
    guidance_kwarg: str = "guidance_scale"  # the pipeline argument ``guidance`` is passed as
    negative_prompt: str | None = None  # true-CFG families need one to apply guidance at all
    union: bool = False  # one ControlNet takes both controls (ControlNet-Union)

    @property
    def controlnet_roles(self) -> tuple[str, ...]:
        return ("controlnet_union",) if self.union else ("canny_controlnet", "depth_controlnet")


FAMILIES: dict[str, ControlNetFamily] = {
    "flux": ControlNetFamily(
        "FluxControlNetPipeline", "FluxMultiControlNetModel", "FluxControlNetModel", "Flux", 512, 16
    ),
    "sd3": ControlNetFamily(
        "StableDiffusion3ControlNetPipeline",
        "SD3MultiControlNetModel",
        "SD3ControlNetModel",
        "StableDiffusion3",
        256,
        16,
    ),
    # Qwen-Image is not guidance-distilled: ``guidance`` is its true-CFG scale (two transformer
    # passes per step, the second on the negative prompt " ", as in its model card).
    "qwenimage": ControlNetFamily(
        "QwenImageControlNetPipeline",
        "QwenImageMultiControlNetModel",
        "QwenImageControlNetModel",
        "QwenImage",
        512,
        16,
        guidance_kwarg="true_cfg_scale",
        negative_prompt=" ",
        union=True,
    ),
}


def _location_hash(path: Path, revision: str | None, repo: str) -> str:
    return f"hf:{repo}@{revision}" if revision else f"sha256:{file_sha256(path)}"


class DiffusersControlNetGenerator:
    """Canny + depth ControlNet generation with one ``torch.Generator`` per sample.

    The pipeline is loaded on the first ``generate`` (or ``pipeline`` access) and kept resident in
    the process; each pipeline call renders up to ``batch_size`` samples (lists of prompts, control
    images and generators). ``speed`` takes :class:`~.speed.SpeedOptions` or a dict of its fields.
    For a union family (Qwen-Image) ``canny_controlnet`` and ``depth_controlnet`` name the same
    ControlNet-Union location.
    """

    def __init__(
        self,
        family: str,
        base_model: str | os.PathLike,
        canny_controlnet: str | os.PathLike,
        depth_controlnet: str | os.PathLike,
        *,
        local_files_only: bool = True,
        **options,
    ):
        self._set_options(family, **options)
        locations = [("base", base_model)]
        if self.family.union:
            if str(canny_controlnet) != str(depth_controlnet):
                raise ValueError(
                    f"{family} uses one ControlNet-Union for both controls: canny_controlnet "
                    f"{str(canny_controlnet)!r} and depth_controlnet {str(depth_controlnet)!r} differ"
                )
            locations.append(("controlnet_union", canny_controlnet))
        else:
            locations += [
                ("canny_controlnet", canny_controlnet),
                ("depth_controlnet", depth_controlnet),
            ]
        self._locations = {}
        for role, loc in locations:
            folder, revision = resolve_location(loc, role, local_files_only)
            if role == "base":
                check_pipeline(folder, role, self.family.base_prefix)
            else:
                check_model(folder, role, (self.family.controlnet,))
            self._locations[role] = (folder, revision, str(loc))
        self._given_pipe = None
        self._given_hashes = None

    def _set_options(
        self,
        family: str,
        *,
        device=None,
        dtype=None,
        batch_size: int = 4,
        steps: int = 28,
        guidance: float = 3.5,
        cond_scales: tuple[float, float] = (0.2, 0.65),
        resolution: int | None = 1024,
        max_sequence_length: int | None = None,
        speed=None,
    ) -> None:
        if family not in FAMILIES:
            raise InputError(f"unknown ControlNet family {family!r}; known: {sorted(FAMILIES)}")
        if batch_size < 1 or steps < 1:
            raise InputError(f"batch_size and steps must be >= 1, got {batch_size}, {steps}")
        self.family_name = family
        self.family = FAMILIES[family]
        self.name = f"{family}_controlnet"
        self.batch_size = int(batch_size)
        self.steps, self.guidance = int(steps), float(guidance)
        self.cond_scales = [float(s) for s in cond_scales]
        self.resolution = resolution
        self.max_sequence_length = int(max_sequence_length or self.family.max_sequence_length)
        if resolution is not None and resolution % self.family.size_multiple:
            raise InputError(
                f"resolution {resolution} must be a multiple of {self.family.size_multiple}"
            )
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.speed = SpeedOptions.from_value(speed)

    @classmethod
    def from_pretrained(cls, base_model, canny_controlnet, depth_controlnet, **kwargs):
        return cls(
            kwargs.pop("family", "flux"), base_model, canny_controlnet, depth_controlnet, **kwargs
        )

    @classmethod
    def with_pipeline(cls, family: str, pipeline, model_hashes: dict[str, str], **options):
        """A generator around an already built pipeline (the random-weight bench): no folders,
        no residency; the load-time speed options are applied to ``pipeline`` here."""
        gen = cls.__new__(cls)
        gen._set_options(family, **options)
        gen._locations = {}
        gen._given_hashes = dict(model_hashes)
        prepare_pipeline(pipeline, gen.speed)
        gen._given_pipe = pipeline
        return gen

    @functools.cached_property
    def model_hashes(self) -> dict[str, str]:
        if self._given_hashes is not None:
            return dict(self._given_hashes)
        return {
            role: _location_hash(f, rev, repo) for role, (f, rev, repo) in self._locations.items()
        }

    @property
    def params(self) -> dict:
        return {
            "steps": self.steps,
            "guidance": self.guidance,
            "cond_scales": list(self.cond_scales),
            "resolution": self.resolution,
            "dtype": str(self.dtype).removeprefix("torch."),
            "max_sequence_length": self.max_sequence_length,
            "batch_size": self.batch_size,
            "speed": self.speed.as_params(),
        }

    @property
    def residency_key(self) -> tuple:
        """What the loaded pipeline depends on: family, resolved folders, device, dtype, options."""
        folders = tuple(str(Path(self._locations[r][0]).resolve()) for r in self._locations)
        return (
            self.family_name,
            folders,
            self.device,
            str(self.dtype),
            self.speed.load_key,
        )

    @property
    def pipeline(self):
        if self._given_pipe is not None:
            return self._given_pipe
        return resident(self.residency_key, self._load)

    def _load(self):
        import diffusers

        load = dict(dtype=self.dtype, local_files_only=True)
        nets = [
            getattr(diffusers, self.family.controlnet).from_pretrained(
                self._locations[r][0], **load
            )
            for r in self.family.controlnet_roles
        ]
        multi = getattr(diffusers, self.family.multi_controlnet)(nets)
        pipe = getattr(diffusers, self.family.pipeline).from_pretrained(
            self._locations["base"][0], controlnet=multi, **load
        )
        pipe.set_progress_bar_config(disable=True)
        pipe = pipe.to(self.device)
        prepare_pipeline(pipe, self.speed)
        return pipe

    def _size(self, batch: list[GenerationRequest]) -> tuple[int, int]:
        if self.resolution is not None:
            return self.resolution, self.resolution
        sizes = {r.size for r in batch}
        if len(sizes) != 1:
            raise ValueError(
                f"requests in one call have different control sizes {sorted(sizes)}; set resolution"
            )
        h, w = sizes.pop()
        m = self.family.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"control size {h}x{w} of {batch[0].sample_id} is not a multiple of {m}"
            )
        return h, w

    def generate(self, batch: list[GenerationRequest]) -> list[Image.Image]:
        import torch

        if not batch:
            return []
        height, width = self._size(batch)
        pipe = self.pipeline
        out: list[Image.Image] = []
        for start in range(0, len(batch), self.batch_size):
            chunk = batch[start : start + self.batch_size]
            canny = [Image.fromarray(np.asarray(r.canny, np.uint8)).convert("RGB") for r in chunk]
            depth = [Image.fromarray(np.asarray(r.depth, np.uint8)).convert("RGB") for r in chunk]
            gens = [torch.Generator(device="cpu").manual_seed(int(r.seed)) for r in chunk]
            extra = {self.family.guidance_kwarg: self.guidance}
            if self.family.negative_prompt is not None:
                extra["negative_prompt"] = [self.family.negative_prompt] * len(chunk)
            with torch.inference_mode(), numerics(self.speed, self.device, pipe, len(chunk)):
                images = pipe(
                    prompt=[r.prompt for r in chunk],
                    control_image=[canny, depth],
                    controlnet_conditioning_scale=list(self.cond_scales),
                    num_inference_steps=self.steps,
                    height=height,
                    width=width,
                    generator=gens,
                    max_sequence_length=self.max_sequence_length,
                    output_type="pil",
                    **extra,
                ).images
            out.extend(im.convert("RGB") for im in images)
        return out


class FluxControlNetGenerator(DiffusersControlNetGenerator):
    """FLUX.1 + canny/depth ControlNets (GenZoo's backend)."""

    @classmethod
    def from_pretrained(cls, base_model, canny_controlnet, depth_controlnet, **kwargs):
        return cls("flux", base_model, canny_controlnet, depth_controlnet, **kwargs)


class SD3ControlNetGenerator(DiffusersControlNetGenerator):
    """Stable Diffusion 3 + canny/depth ControlNets, through the same registry."""

    @classmethod
    def from_pretrained(cls, base_model, canny_controlnet, depth_controlnet, **kwargs):
        kwargs.setdefault("guidance", 7.0)
        return cls("sd3", base_model, canny_controlnet, depth_controlnet, **kwargs)


class QwenImageControlNetGenerator(DiffusersControlNetGenerator):
    """Qwen-Image + ControlNet-Union (canny and depth through one network), true CFG 4.0."""

    @classmethod
    def from_pretrained(
        cls,
        base_model,
        controlnet_union=None,
        *,
        canny_controlnet=None,
        depth_controlnet=None,
        **kwargs,
    ):
        given = {str(x) for x in (controlnet_union, canny_controlnet, depth_controlnet) if x}
        if len(given) != 1:
            raise ValueError(
                "qwenimage_controlnet takes one ControlNet-Union location (controlnet_union, or "
                f"canny_controlnet and/or depth_controlnet naming the same one), got {sorted(given)}"
            )
        union = given.pop()
        kwargs.setdefault("guidance", 4.0)
        return cls("qwenimage", base_model, union, union, **kwargs)
