"""Photo prompts for the image model: species, the caption's orientation, and a drawn setting.

GenZoo had an LLM (Qwen2.5-7B-Instruct) write each prompt from the species, the caption and
sampled scene words; :class:`TemplatePrompter` (the default) assembles the same ingredients with
sentence templates from ``data/photo_vocabulary.yaml``. Every draw comes from the item's seed, so a
sample's prompt is reproducible and independent of its neighbours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from genzoo_assets.core.text.budget import Clause, TokenBudget
from genzoo_assets.core.text.vocabulary import PhotoSetting, data_sha256, sample_setting

REQUIRED_SLOTS = ("opening", "subject", "orientation")
SHORT_OPENING = "A photo of"
# Higher survives longer in TokenBudget.fit: lens goes first, then lighting, ... scene last.
SLOT_PRIORITY = {
    "scene": 60,
    "camera_height": 50,
    "time_of_day": 40,
    "weather": 30,
    "lighting": 20,
    "lens": 10,
}
_SLOT = re.compile(r"\{(\w+)\}")
_CAPTION_SUBJECT = re.compile(
    r"^(?:it|(?:the|this|a|an)\s+[\w' -]+?)\s+(?:is|are|appears to be)\s+(.+)$", re.I
)


@dataclass
class PromptInput:
    species_common_name: str
    is_dog: bool
    breed: str | None
    caption: str
    seed: int


@dataclass(frozen=True)
class FittedPrompt:
    text: str
    num_tokens: int
    backend: str


@runtime_checkable
class Prompter(Protocol):
    name: str
    model_files: dict[str, str]

    def prompt_batch(self, items: list[PromptInput]) -> list[str]: ...


def subject_phrase(item: PromptInput) -> str:
    """ "a Border Collie dog", "an African elephant": the name the image model must draw."""
    name = (item.breed or "").strip() if item.is_dog else ""
    name = name or item.species_common_name.strip()
    if not name:
        raise ValueError(f"prompt input (seed {item.seed}): species_common_name is empty")
    if item.is_dog and "dog" not in name.lower():
        name = f"{name} dog"
    article = "an" if name[0].lower() in "aeiou" else "a"
    return f"{article} {name}"


def orientation_phrase(caption: str) -> str:
    """The caption without its subject: "The animal is facing left, ..." -> "facing left, ..."."""
    text = " ".join(str(caption or "").split()).strip().rstrip(".!")
    match = _CAPTION_SUBJECT.match(text)
    if match:
        return match.group(1).strip()
    return text[:1].lower() + text[1:]


def setting_slots(item: PromptInput, setting: PhotoSetting) -> dict[str, str]:
    return {
        "opening": setting.opening,
        "subject": subject_phrase(item),
        "orientation": orientation_phrase(item.caption),
        "scene": setting.scene,
        "lighting": setting.lighting,
        "time_of_day": setting.time_of_day,
        "weather": setting.weather,
        "camera_height": setting.camera_height,
        "lens": setting.lens,
    }


def template_clauses(
    item: PromptInput, setting: PhotoSetting, opening: str | None = None
) -> list[Clause]:
    """The drawn template's segments as clauses; a segment whose optional slot is empty is left out."""
    slots = setting_slots(item, setting)
    if opening is not None:
        slots["opening"] = opening
    clauses = []
    for segment in setting.template:
        names = _SLOT.findall(segment)
        unknown = [n for n in names if n not in slots]
        if unknown:
            raise ValueError(
                f"photo_vocabulary.yaml template segment {segment!r} names unknown slots {unknown}"
            )
        optional = [n for n in names if n not in REQUIRED_SLOTS]
        if any(not slots[n] for n in optional):
            continue
        text = " ".join(segment.format(**slots).split())
        if optional:
            clauses.append(Clause(text, SLOT_PRIORITY.get(optional[0], 0)))
        else:
            clauses.append(Clause(text, 100, required=True))
    return clauses


def fit_template(item: PromptInput, setting: PhotoSetting, budget: TokenBudget) -> tuple[str, int]:
    """The template prompt within ``budget``; a long species name may cost the opening its
    adjectives ("A photo of") or the whole opening, never a word of the name or orientation."""
    what = f"prompt for {subject_phrase(item)}"
    for opening in (None, SHORT_OPENING):
        try:
            return budget.fit(template_clauses(item, setting, opening), what=what)
        except ValueError:
            continue
    return budget.fit(template_clauses(item, setting, ""), what=what)


def draw_setting(item: PromptInput) -> PhotoSetting:
    if not isinstance(item.seed, (int, np.integer)):
        raise ValueError(
            f"prompt input for {item.species_common_name!r}: seed must be an int, got {item.seed!r}"
        )
    return sample_setting(np.random.default_rng(int(item.seed)), bool(item.is_dog), item.caption)


class TemplatePrompter:
    """Prompts from sentence templates and the packaged vocabulary (the default; no model)."""

    name = "template"

    def __init__(self, budget: TokenBudget | None = None) -> None:
        self.budget = budget or TokenBudget()
        self.model_files = {"photo_vocabulary": data_sha256("photo_vocabulary.yaml")}

    def prompt_batch(self, items: list[PromptInput]) -> list[str]:
        return [p.text for p in self.fitted_batch(items)]

    def fitted_batch(
        self, items: list[PromptInput], budget: TokenBudget | None = None
    ) -> list[FittedPrompt]:
        """Prompts fitted to ``budget`` (default: this prompter's), with token counts and backend."""
        budget = budget or self.budget
        return [
            FittedPrompt(*fit_template(item, draw_setting(item), budget), self.name)
            for item in items
        ]
