"""GenZoo's captioner: a vision-language model asked how the animal in the raw render is oriented.

The paper used Molmo-7B-D; its remote code does not run on the pinned transformers 5, so the
default is Qwen2.5-VL-7B-Instruct (native transformers; Qwen3-VL-8B-Instruct works the same way).
Which code loads which folder, and the exact Molmo limitation, are in :mod:`.vlm_loading`. The model
is asked the fixed question of ``data/instructions.yaml`` with greedy decoding, a batch at a time;
Molmo (on transformers 4.46–4.53, ``trust_remote_code=True``) is driven through its processor's
``process()`` and ``generate_from_batch()``, one image at a time, as in its model card.

The model is loaded once per process (:func:`core.residency.resident`, keyed by role, folder,
device and dtype): every partition a process captions after the first reuses it.
"""

from __future__ import annotations

import os
import re

import numpy as np

from genzoo_assets.core.device import resolve_device, resolve_dtype
from genzoo_assets.core.model_dirs import check_transformers_dir, model_label
from genzoo_assets.core.residency import resident
from genzoo_assets.core.text.captioners import CaptionInput, GeometricCaptioner
from genzoo_assets.core.text.fallback import fallback_name
from genzoo_assets.core.text.vlm_loading import DEFAULT_VLM, MOLMO_TYPE, load_vlm
from genzoo_assets.core.text.vocabulary import data_sha256, load_data

_ANSWER_PREFIX = re.compile(r"^\s*(answer|assistant|a)\s*:\s*", re.I)
_QUOTES = "\"'`“”‘’"


def one_sentence(text: str) -> str:
    """The first sentence of a model answer, whitespace collapsed, capitalised, ending in a full stop."""
    text = _ANSWER_PREFIX.sub("", " ".join(str(text).split())).strip().strip(_QUOTES).strip()
    match = re.match(r"(.+?[.!?])(?=\s|$)", text)
    sentence = (match.group(1) if match else text).strip().strip(_QUOTES).strip()
    if not sentence:
        return ""
    if sentence[-1] not in ".!?":
        sentence += "."
    return sentence[0].upper() + sentence[1:]


def _pil(image: np.ndarray, index: int):
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise ValueError(
            f"caption input {index}: image must be an HxWx3 uint8 array, got {arr.dtype} {arr.shape}"
        )
    return Image.fromarray(arr[..., :3])


class VLMCaptioner:
    """Captions from a local vision-language model; empty answers fall back to the geometric caption."""

    needs_images = True

    def __init__(
        self,
        model_dir: str | os.PathLike | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 48,
        trust_remote_code: bool = False,
    ) -> None:
        folder = check_transformers_dir(
            model_dir or DEFAULT_VLM, "VLM captioner", needs_processor=True
        )
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        key = ("vlm", str(folder), self.device, str(self.dtype), bool(trust_remote_code))
        loaded = resident(
            key, lambda: load_vlm(folder, self.device, self.dtype, bool(trust_remote_code))
        )
        self.model, self.processor = loaded.model, loaded.processor
        self._molmo = loaded.model_type == MOLMO_TYPE
        self.name = f"vlm:{model_label(model_dir or DEFAULT_VLM, folder)}"
        self.model_files = {
            "vlm": loaded.sha256,
            "instructions": data_sha256("instructions.yaml"),
        }
        self._fallback = GeometricCaptioner()

    def question(self, species_name: str | None) -> str:
        return load_data("instructions.yaml")["vlm_question"].format(
            animal=species_name or "animal"
        )

    def caption_batch(self, items: list[CaptionInput]) -> list[str]:
        return [text for text, _ in self.caption_batch_with_backend(items)]

    def caption_batch_with_backend(self, items: list[CaptionInput]) -> list[tuple[str, str]]:
        for i, item in enumerate(items):
            if item.image is None:
                raise ValueError(
                    f"caption input {i} ({item.species_name or 'unknown species'}): "
                    "the VLM captioner needs the raw render image"
                )
        answers: list[str] = []
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            answers.extend(
                self._generate_molmo(chunk, start) if self._molmo else self._generate(chunk, start)
            )
        out = []
        fallbacks = self._fallback.caption_batch(items)
        for answer, fallback in zip(answers, fallbacks):
            sentence = one_sentence(answer)
            out.append(
                (sentence, self.name)
                if sentence
                else (fallback, fallback_name("geometric", self.name))
            )
        return out

    def _prompt_text(self, question: str) -> str:
        if getattr(self.processor, "chat_template", None):
            messages = [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}
            ]
            return self.processor.apply_chat_template(messages, add_generation_prompt=True)
        return f"{getattr(self.processor, 'image_token', '<image>')}\n{question}"

    def _generate(self, chunk: list[CaptionInput], offset: int) -> list[str]:
        import torch

        images = [_pil(item.image, offset + i) for i, item in enumerate(chunk)]
        texts = [self._prompt_text(self.question(item.species_name)) for item in chunk]
        inputs = self.processor(images=images, text=texts, return_tensors="pt", padding=True).to(
            self.device
        )
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)

    def _generate_molmo(self, chunk: list[CaptionInput], offset: int) -> list[str]:
        import torch
        from transformers import GenerationConfig

        answers = []
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens, do_sample=False, stop_strings="<|endoftext|>"
        )
        for i, item in enumerate(chunk):
            raw = self.processor.process(
                images=[_pil(item.image, offset + i)], text=self.question(item.species_name)
            )
            inputs = {k: v.to(self.device).unsqueeze(0) for k, v in raw.items()}
            if "images" in inputs:
                inputs["images"] = inputs["images"].to(self.dtype)
            with torch.inference_mode():
                out = self.model.generate_from_batch(
                    inputs, config, tokenizer=self.processor.tokenizer
                )
            answers.append(
                self.processor.tokenizer.decode(
                    out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True
                )
            )
        return answers
