"""The packaged vocabularies (``data/*.yaml``) and the seeded draw of one photo setting.

Words live in data files so that prompt style can be tuned without touching code, and so a
prompt's provenance is the data file's hash plus the sample seed.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

DATA_PACKAGE = "genzoo_assets.core.text.data"

# Caption words -> camera-height group, most specific first (see photo_vocabulary.yaml).
_VIEW_PATTERNS = (
    (
        "above",
        re.compile(r"\b(from (directly |slightly )?above|overhead|top-down|bird'?s-eye)\b", re.I),
    ),
    ("below", re.compile(r"\b(from (directly |slightly )?below|low angle|worm'?s-eye)\b", re.I)),
    ("eye_level", re.compile(r"\beye level\b", re.I)),
)


@functools.cache
def load_data(name: str) -> dict:
    """A YAML data file of this package, parsed once per process."""
    path = resources.files(DATA_PACKAGE) / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"text data file {name!r} is missing from {DATA_PACKAGE}") from exc
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"text data file {name!r} must hold a mapping, got {type(data).__name__}")
    return data


def data_sha256(name: str) -> str:
    """sha256 of a packaged data file, for provenance."""
    return hashlib.sha256((resources.files(DATA_PACKAGE) / name).read_bytes()).hexdigest()


def view_class(caption: str) -> str:
    """Which camera-height group agrees with a caption: "above", "below", "eye_level" or "any"."""
    for key, pattern in _VIEW_PATTERNS:
        if pattern.search(caption):
            return key
    return "any"


@dataclass(frozen=True)
class PhotoSetting:
    """One drawn photo setting; empty strings are clauses that do not apply (indoors: no weather)."""

    opening: str
    scene: str
    lighting: str
    time_of_day: str
    weather: str
    camera_height: str
    lens: str
    template: tuple[str, ...]


def _pick(rng: np.random.Generator, options: list, field: str):
    if not options:
        raise ValueError(f"photo vocabulary field {field!r} is empty")
    return options[int(rng.integers(len(options)))]


def sample_setting(rng: np.random.Generator, is_dog: bool, caption: str) -> PhotoSetting:
    """Draw scene, lighting, time of day, weather, camera height, lens and a template.

    The draw order is fixed so a seed always gives the same setting for the same vocabulary.
    """
    vocab = load_data("photo_vocabulary.yaml")
    group = "dog" if is_dog else "wild"
    opening = _pick(rng, vocab["openings"]["any"] + vocab["openings"][group], f"openings.{group}")
    scene = _pick(rng, vocab["scenes"][group], f"scenes.{group}")
    condition = _pick(rng, vocab["conditions"], "conditions")
    if scene.get("indoor", False):
        lighting, time_of_day, weather = (
            _pick(rng, vocab["indoor_lighting"], "indoor_lighting"),
            "",
            "",
        )
    else:
        lighting = _pick(rng, condition["lighting"], "conditions.lighting")
        time_of_day = condition["time_of_day"]
        weather = _pick(rng, condition["weather"], "conditions.weather")
    heights = vocab["camera_heights"]
    return PhotoSetting(
        opening=opening,
        scene=scene["text"],
        lighting=lighting,
        time_of_day=time_of_day,
        weather=weather,
        camera_height=_pick(
            rng, heights.get(view_class(caption), heights["any"]), "camera_heights"
        ),
        lens=_pick(rng, vocab["lenses"], "lenses"),
        template=tuple(_pick(rng, vocab["templates"], "templates")),
    )
