"""Deterministic sample ids and seeds: every random draw of a sample derives from its id.

A rerun of a partition therefore reproduces the same ground truth, byte for byte, and the
draws of one stage (``stream``) never shift when another stage changes how many numbers it uses.
"""

from __future__ import annotations

import hashlib

import numpy as np


def sample_id(species: str, shard: str, index: int) -> str:
    """Stable id of the ``index``-th sample of a species × shard partition."""
    return f"{species}.{shard}.{index:05d}"


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts (sha256, so it is stable across processes)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def rng_for(sample: str, stream: str, base_seed: int = 0) -> np.random.Generator:
    """The generator for one stage (``stream``, e.g. "shape", "pose", "camera") of one sample."""
    return np.random.default_rng(derive_seed(base_seed, sample, stream))
