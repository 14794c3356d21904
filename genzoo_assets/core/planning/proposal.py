"""A bounded proposal: tilt a base distribution towards high error, never further than a ratio.

``q_i ∝ p_i · (e_i / ē)^γ`` (``e_i`` the level's shrunk error, ``ē`` its base-weighted mean, γ the
``sharpness``), then projected onto ``p_i / r ≤ q_i ≤ r · p_i``: ``q_i = clip(λ·u_i, p_i/r, r·p_i)``
with the one λ that makes them sum to 1 (bisection; the sum is monotone in λ). The bound keeps
every level drawn at least ``1/r`` as often as the base does (coverage never collapses) and keeps
importance weights within ``[1/r, r]`` (their variance bounded).
"""

from __future__ import annotations

import numpy as np


def bounded_proposal(
    base: dict[str, float], error: dict[str, float], ratio: float, sharpness: float = 1.0
) -> dict[str, float]:
    """The proposal over ``base``'s levels (a level without an error estimate keeps the mean)."""
    if not ratio >= 1.0:
        raise ValueError(f"plan ratio must be >= 1 (proposal / base bound), got {ratio}")
    if sharpness < 0:
        raise ValueError(f"plan sharpness must be >= 0, got {sharpness}")
    levels = list(base)
    p = np.array([base[k] for k in levels], dtype=np.float64)
    if len(p) == 0 or (p < 0).any() or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"base distribution must be non-negative and sum to 1, got {base}")
    mean = float(
        sum(base[k] * error[k] for k in levels if k in error)
        / max(sum(base[k] for k in levels if k in error), 1e-300)
    )
    e = np.array([error.get(k, mean) for k in levels], dtype=np.float64)
    score = (np.maximum(e, 1e-12) / max(mean, 1e-12)) ** sharpness if mean > 0 else np.ones_like(e)
    u = p * score
    lo, hi = p / ratio, p * ratio

    def total(lam: float) -> float:
        return float(np.clip(lam * u, lo, hi).sum())

    a, b = 0.0, 1.0
    while total(b) < 1.0:
        b *= 2.0
        if b > 1e300:
            break
    for _ in range(200):
        mid = 0.5 * (a + b)
        a, b = (mid, b) if total(mid) < 1.0 else (a, mid)
    q = np.clip(b * u, lo, hi)
    q = q / q.sum()
    return dict(zip(levels, map(float, q)))


def tilted_proposal(base: dict[str, float], tilt: dict[str, float]) -> dict[str, float]:
    """A proposal over another backend's ``base`` levels: each level's base times its ``tilt``
    (a plan's ``proposal / base``; 1 for a level the plan does not know), renormalised and bounded
    by the largest departure the plan itself makes, so the weights stay as bounded as the plan's.

    When ``base`` is the plan's own base, this is the plan's proposal.
    """
    t = {k: float(tilt.get(k, 1.0)) for k in base}
    bound = max([max(r, 1.0 / r) for r in t.values()] + [1.0])
    return bounded_proposal(base, t, bound, sharpness=1.0)
