"""Keep prompts inside the text encoder's token window by dropping the least important clauses.

FLUX reads the prompt with two encoders: CLIP ViT-L (77 tokens, start and end included; the
pooled embedding that steers global content) and T5-XXL (512 tokens in FLUX.1-dev). Words past
CLIP's 77th token are silently ignored, so the default budget is 77; pass ``max_tokens=512`` with
a T5 tokenizer to budget for T5 alone.

A prompt is a list of :class:`Clause` objects. Required clauses (species, orientation) are never
shortened; optional ones are dropped lowest priority first (lens, then lighting, weather, time of
day, camera height, scene), and the last one dropped is put back truncated to as many words as
still fit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from genzoo_assets.core.errors import InputError

CLIP_MAX_TOKENS = 77

_PIECES = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


@dataclass(frozen=True)
class Clause:
    text: str
    priority: int = 0  # higher survives longer
    required: bool = False


def estimate_tokens(text: str) -> int:
    """A deliberately high CLIP-BPE token count: start/end tokens, one per punctuation mark or
    number, and one per 4 letters of each word (CLIP codes most English words as one token, rare
    names as a few)."""
    total = 2
    for piece in _PIECES.findall(text):
        total += math.ceil(len(piece) / 4) if piece.isalpha() else 1
    return total


def join_clauses(clauses: list[Clause], sep: str = ", ") -> str:
    """Clauses joined by ``sep`` (", " for phrases, " " for sentences), capitalised, ending in a stop."""
    parts = [c.text.strip() for c in clauses if c.text.strip()]
    if sep.strip() == ",":
        parts = [p.rstrip(",.;") for p in parts]
    text = sep.join(parts).rstrip(",;: ")
    if not text:
        return ""
    return text[0].upper() + text[1:] + ("" if text[-1] in ".!?" else ".")


class TokenBudget:
    """Token counting and fitting for one text encoder (``tokenizer=None``: :func:`estimate_tokens`)."""

    def __init__(self, tokenizer=None, max_tokens: int = CLIP_MAX_TOKENS) -> None:
        if max_tokens < 4:
            raise InputError(f"token budget max_tokens must be at least 4, got {max_tokens}")
        self.tokenizer = tokenizer
        self.max_tokens = int(max_tokens)

    def count(self, text: str) -> int:
        if self.tokenizer is None:
            return estimate_tokens(text)
        return len(self.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def fits(self, text: str) -> bool:
        return self.count(text) <= self.max_tokens

    def fit(self, clauses: list[Clause], what: str = "prompt", sep: str = ", ") -> tuple[str, int]:
        """(text, token count) of the longest version of ``clauses`` within the budget."""
        kept = [c for c in clauses if c.text.strip()]
        text = join_clauses(kept, sep)
        if self.fits(text):
            return text, self.count(text)
        droppable = sorted((c for c in kept if not c.required), key=lambda c: c.priority)
        for clause in droppable:
            order = kept
            kept = [c for c in kept if c is not clause]
            text = join_clauses(kept, sep)
            if self.fits(text):
                return self._put_back_truncated(order, clause, sep)
        raise InputError(
            f"{what}: the required clauses alone take {self.count(text)} tokens, over the budget of "
            f"{self.max_tokens}: {text!r}"
        )

    def _put_back_truncated(self, order: list[Clause], clause: Clause, sep: str) -> tuple[str, int]:
        """Re-insert the longest prefix of ``clause`` that fits: cut at its commas when it has
        any ("85mm lens, shallow depth of field" -> "85mm lens"), else after a content word."""
        best = join_clauses([c for c in order if c is not clause], sep)
        for prefix in truncations(clause.text):  # longest first
            candidate = join_clauses(
                [Clause(prefix, clause.priority) if c is clause else c for c in order], sep
            )
            if self.fits(candidate):
                return candidate, self.count(candidate)
        return best, self.count(best)


_FUNCTION_WORDS = frozenset(
    "a an the of in on at by to from with through and or for its their".split()
)


def truncations(text: str) -> list[str]:
    """Shorter versions of a clause, longest first, each ending on a meaningful boundary."""
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        return [", ".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]
    words = text.split()
    return [
        " ".join(words[:n])
        for n in range(len(words) - 1, 1, -1)
        if words[n - 1].lower() not in _FUNCTION_WORDS
    ]
