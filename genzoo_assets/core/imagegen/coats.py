"""Coat colours and patterns of the render-composite backend, as albedo per surface point.

Patterns are evaluated at points of the *unposed* body in its canonical frame (x forward, y up,
z right), normalised by body length, so a stripe or a spot stays on the same patch of fur
whatever the pose and view. The palette comes from ``data/coat_palettes.json``: the first rule
whose keyword names the sample's breed/species/family/order (or a word of its prompt) wins;
colour words of the prompt ("a black dog") override the base colour most of the time.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np


@dataclass(frozen=True)
class Coat:
    pattern: str
    base: np.ndarray  # (3,) linear-ish RGB in [0, 1]
    secondary: np.ndarray
    belly: np.ndarray | None
    back: np.ndarray | None
    rule: str  # the keyword list that chose the palette ("default" if none)


@functools.lru_cache(maxsize=1)
def palettes() -> dict:
    return json.loads(
        resources.files("genzoo_assets.core.imagegen")
        .joinpath("data/coat_palettes.json")
        .read_text()
    )


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def match_rule(species: str, species_info: dict, prompt: str) -> tuple[dict, str]:
    """(rule, description): fields from the most specific (breed) to the prompt, rules in file order."""
    table = palettes()
    info = {str(k).lower(): str(v) for k, v in species_info.items()}
    fields = [info.pop("breed", ""), species.replace("_", " ").replace("-", " ")]
    fields += [
        info.pop(k, "") for k in ("common_name", "scientific_name", "genus", "family", "order")
    ]
    fields += [*info.values(), prompt]
    texts = [_words(f) for f in fields if f]
    for text in texts:
        for rule in table["rules"]:
            if any(f" {k} " in text for k in rule["keywords"]):
                return rule, "/".join(rule["keywords"][:3])
    return table["default"], "default"


def choose_coat(rng: np.random.Generator, species: str, species_info: dict, prompt: str) -> Coat:
    rule, name = match_rule(species, species_info, prompt)
    names = list(rule["patterns"])
    weights = np.array([rule["patterns"][n] for n in names], dtype=float)
    pattern = names[rng.choice(len(names), p=weights / weights.sum())]
    pick = lambda key: np.asarray(rule[key][rng.integers(len(rule[key]))], float) / 255.0  # noqa: E731
    base, secondary = pick("colours"), pick("secondary")
    colour_words = palettes()["colour_words"]
    said = [w for w in _words(prompt).split() if w in colour_words]
    if said and rng.random() < 0.8:
        base = np.asarray(colour_words[said[0]], float) / 255.0
    base = np.clip(base * rng.uniform(0.85, 1.15) + rng.normal(0, 0.02, 3), 0, 1)
    opt = lambda key: None if key not in rule else np.asarray(rule[key], float) / 255.0  # noqa: E731
    return Coat(pattern, base, secondary, opt("belly"), opt("back"), name)


def _smooth_noise(
    rng: np.random.Generator, points: np.ndarray, freq: float, octaves: int = 6
) -> np.ndarray:
    """Sum of random 3-D sinusoids: smooth, seeded, cheap noise in about [-1, 1]."""
    out = np.zeros(len(points))
    for _ in range(octaves):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        out += np.sin(points @ direction * freq * rng.uniform(0.6, 1.6) + rng.uniform(0, 2 * np.pi))
    return out / np.sqrt(octaves / 2)


def _blobs(rng, points, count, radius, jitter_freq) -> np.ndarray:
    """1 inside any of ``count`` blobs centred on random surface points, soft-edged, noisy outline."""
    centres = points[rng.integers(len(points), size=count)]
    radii = radius * rng.uniform(0.6, 1.4, size=count)
    d = np.full(len(points), np.inf)
    for c, r in zip(centres, radii):  # a loop keeps memory at O(N) for ~10^5 points
        np.minimum(d, np.linalg.norm(points - c, axis=1) / r, out=d)
    d = d + 0.25 * _smooth_noise(rng, points, jitter_freq)
    return np.clip((1.0 - d) * 8.0, 0, 1)


def normalise_body(points: np.ndarray) -> np.ndarray:
    """Centre on the bounding box, scale so the body length (x extent, or the largest) is 1."""
    points = np.asarray(points, float)
    lo, hi = points.min(0), points.max(0)
    return (points - (lo + hi) / 2) / max(float((hi - lo).max()), 1e-9)


def coat_albedo(
    coat: Coat, points: np.ndarray, up: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(N, 3) albedo at canonical ``points`` (normalised body) with ``up`` (N,) in [-1, 1]:
    the canonical up-component of the surface normal (or height), for countershading."""
    n = len(points)
    base = np.broadcast_to(coat.base, (n, 3)).copy()
    base *= (1.0 + 0.12 * _smooth_noise(rng, points, 9.0))[:, None]  # low-frequency fur variation
    sec = coat.secondary
    if coat.pattern == "stripes":
        wobble = 0.06 * _smooth_noise(rng, points, 6.0)
        phase = (points[:, 0] + 0.35 * np.abs(points[:, 1]) + wobble) * rng.uniform(45, 70)
        t = np.clip((np.sin(phase) - rng.uniform(0.1, 0.4)) * 4.0, 0, 1)
    elif coat.pattern == "spots":
        t = _blobs(rng, points, int(rng.integers(90, 160)), rng.uniform(0.02, 0.035), 40.0)
    elif coat.pattern == "patches":
        t = _blobs(rng, points, int(rng.integers(4, 10)), rng.uniform(0.09, 0.16), 14.0)
    else:
        t = np.zeros(n)
    albedo = base * (1 - t[:, None]) + sec * t[:, None]
    if coat.pattern == "countershading" or coat.belly is not None or coat.back is not None:
        belly = coat.belly if coat.belly is not None else np.clip(coat.base * 1.5 + 0.15, 0, 1)
        back = coat.back if coat.back is not None else coat.base * 0.7
        s = np.clip(up * 1.6 + 0.1 * _smooth_noise(rng, points, 12.0), -1, 1)
        lower, upper = np.clip(-s, 0, 1)[:, None], np.clip(s, 0, 1)[:, None]
        keep = 1.0 if coat.pattern == "countershading" else 0.6
        albedo = albedo * (1 - keep * lower - keep * 0.6 * upper) + keep * (
            lower * belly + 0.6 * upper * back
        )
    return np.clip(albedo, 0, 1)
