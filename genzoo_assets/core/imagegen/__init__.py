"""imagegen stage: generators (render-composite default, FLUX/SD3 + ControlNets, Qwen-Image +
ControlNet-Union), speed settings, alignment score,
and the per-partition function the Dagster asset calls."""

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.model_dirs import ModelDirectoryError

from .alignment import DEFAULT_THRESHOLD, alignment_score
from .base import GenerationRequest, ImageGenerator
from .flux import (
    FAMILIES,
    DiffusersControlNetGenerator,
    FluxControlNetGenerator,
    QwenImageControlNetGenerator,
    SD3ControlNetGenerator,
)
from .partition import OUTPUT_COLUMNS, generate_partition
from .render_composite import RenderCompositeGenerator
from .speed import SpeedOptions

GENERATORS = ("render_composite", "flux_controlnet", "sd3_controlnet", "qwenimage_controlnet")
# Backends whose images can disagree with their controls. render_composite alpha-blends over the
# control mask and shades from the control normals, so its alignment holds by construction.
GENERATIVE = ("flux_controlnet", "sd3_controlnet", "qwenimage_controlnet")


from .sheet import write_image_sheet  # noqa: E402


def make_generator(name: str, **kwargs) -> ImageGenerator:
    """A generator by backend name; ControlNet backends take ``base_model``, ``canny_controlnet``,
    ``depth_controlnet`` (Qwen-Image: ``controlnet_union``, or both naming it) and the
    ``from_pretrained`` options, ``speed`` included."""
    if name in ("render", "render_composite"):  # "render": the and the UI's short name
        return RenderCompositeGenerator(**kwargs)
    if name == "flux_controlnet":
        return FluxControlNetGenerator.from_pretrained(**kwargs)
    if name == "sd3_controlnet":
        return SD3ControlNetGenerator.from_pretrained(**kwargs)
    if name == "qwenimage_controlnet":
        return QwenImageControlNetGenerator.from_pretrained(**kwargs)
    raise InputError(f"unknown image generator {name!r}; known: {GENERATORS}")


__all__ = [
    "DEFAULT_THRESHOLD",
    "FAMILIES",
    "GENERATIVE",
    "GENERATORS",
    "OUTPUT_COLUMNS",
    "DiffusersControlNetGenerator",
    "FluxControlNetGenerator",
    "GenerationRequest",
    "ImageGenerator",
    "ModelDirectoryError",
    "QwenImageControlNetGenerator",
    "RenderCompositeGenerator",
    "SD3ControlNetGenerator",
    "SpeedOptions",
    "alignment_score",
    "generate_partition",
    "make_generator",
    "write_image_sheet",
]
