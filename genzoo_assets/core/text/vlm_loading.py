"""Loading a vision-language model folder for the captioner, under the pinned transformers.

Which code loads a folder depends on its ``config.json`` ``model_type``:

- ``qwen2_5_vl`` (Qwen2.5-VL-7B-Instruct, the default), ``qwen3_vl`` (Qwen3-VL-8B-Instruct, what SAM 3D
  Animal's Herd3D captions with) and ``qwen2_vl``: transformers' native classes. Their processors
  also carry a video processor, which transformers 5 implements with torchvision only (excluded
  here on purpose): the processor is built for images alone (:func:`image_only_processor`).
- ``molmo`` (``allenai/Molmo-7B-D-0924``, the paper's VLM): remote code from the model folder,
  which runs on transformers 4.46–4.53 only (on 5.x it imports torchvision and einops, asserts
  ``generation_config.use_cache`` and indexes ``DynamicCache`` as a tuple). Outside that range it
  is refused before anything loads (:class:`UnsupportedVLMError`).
- anything else (LLaVA, Molmo2, ...): ``AutoProcessor`` + ``AutoModelForImageTextToText``.

Every model loads with ``local_files_only`` in the dtype it runs in (bf16 on CUDA).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from genzoo_assets.core.model_dirs import ModelDirectoryError

DEFAULT_VLM = "Qwen/Qwen2.5-VL-7B-Instruct"  # a cached Hugging Face repo id or a local folder
NATIVE_QWEN = {
    "qwen2_vl": ("Qwen2VLForConditionalGeneration", "Qwen2VLProcessor"),
    "qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor"),
    "qwen3_vl": ("Qwen3VLForConditionalGeneration", "Qwen3VLProcessor"),
}
MOLMO_TYPE = "molmo"
MOLMO_TRANSFORMERS = (
    (4, 46),
    (4, 53),
)  # the releases Molmo-7B-D's remote code is reported to run on


class UnsupportedVLMError(ModelDirectoryError):
    """A model folder this environment cannot run (e.g. Molmo's remote code on transformers 5)."""


@dataclass
class LoadedVLM:
    """What one load produces; held by :mod:`core.residency` for the whole process."""

    model: object  # a transformers PreTrainedModel, on its device, in eval mode
    processor: object  # turns (images, texts) into model inputs; ``batch_decode`` for answers
    model_type: str  # config.json's model_type
    sha256: str  # of the whole folder, for provenance


def model_type(folder: Path) -> str:
    """``model_type`` of the folder's ``config.json`` ("" when it names none)."""
    try:
        return str(json.loads((folder / "config.json").read_text()).get("model_type", ""))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelDirectoryError(
            f"VLM captioner: {folder / 'config.json'} is unreadable ({exc})"
        ) from exc


def transformers_version() -> tuple[int, int]:
    import transformers

    major, minor = transformers.__version__.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def refuse_unsupported(folder: Path, kind: str, trust_remote_code: bool) -> None:
    """One clear line, before any weight is read, for a folder that cannot run here."""
    if kind != MOLMO_TYPE:
        return
    import transformers

    low, high = MOLMO_TRANSFORMERS
    if not low <= transformers_version() <= high:
        raise UnsupportedVLMError(
            f"VLM captioner: {folder} is Molmo, whose remote code runs on transformers "
            f"{low[0]}.{low[1]}-{high[0]}.{high[1]} only; this environment has transformers "
            f"{transformers.__version__}: use {DEFAULT_VLM} (the default) or Qwen/Qwen3-VL-8B-Instruct"
        )
    if not trust_remote_code:
        raise UnsupportedVLMError(
            f"VLM captioner: {folder} is Molmo, which runs its own Python code from the folder: "
            "set trust_remote_code to allow it"
        )


def image_only_processor(folder: Path, processor_name: str, **kwargs):
    """The model's processor without its video processor (transformers 5 builds that with
    torchvision only); the image processor resolves to its PIL backend."""
    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    base = getattr(transformers, processor_name)

    class ImageOnly(base):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **extra):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template)

    ImageOnly.__name__ = ImageOnly.__qualname__ = f"{processor_name}ImageOnly"
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    return ImageOnly(
        image_processor=AutoImageProcessor.from_pretrained(folder, **kwargs),
        tokenizer=tokenizer,
        chat_template=chat_template(folder) or getattr(tokenizer, "chat_template", None),
    )


def chat_template(folder: Path) -> str | None:
    """The processor's chat template as a model folder stores it (``chat_template.jinja`` or
    ``chat_template.json``), or None."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    stored = folder / "chat_template.json"
    if stored.is_file():
        return json.loads(stored.read_text()).get("chat_template")
    return None


def load_vlm(folder: Path, device: str, dtype, trust_remote_code: bool = False) -> LoadedVLM:
    """Processor and model of a checked folder, on ``device`` in ``dtype`` (see the module doc)."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor

    from genzoo_assets.core.provenance import file_sha256

    kind = model_type(folder)
    refuse_unsupported(folder, kind, trust_remote_code)
    kwargs = dict(local_files_only=True, trust_remote_code=trust_remote_code)
    if kind in NATIVE_QWEN:
        model_name, processor_name = NATIVE_QWEN[kind]
        processor = image_only_processor(folder, processor_name, local_files_only=True)
        model = getattr(transformers, model_name).from_pretrained(
            folder, dtype=dtype, local_files_only=True
        )
    else:
        processor = AutoProcessor.from_pretrained(folder, **kwargs)
        loader = AutoModelForCausalLM if kind == MOLMO_TYPE else AutoModelForImageTextToText
        model = loader.from_pretrained(folder, dtype=dtype, **kwargs)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None:
        tokenizer.padding_side = "left"  # batched generation continues after the prompt
    return LoadedVLM(model.to(device).eval(), processor, kind, file_sha256(folder))
