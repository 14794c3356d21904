"""A model of the regressor's per-sample error over the sampling factors: per-level means shrunk
towards the overall mean (empirical Bayes), one table per factor.

For a factor level with ``n`` samples and mean error ``m``, the estimate is
``(n·m + k·μ) / (n + k)`` (μ the overall mean): a normal–normal model whose prior strength
``k = σ²_within / τ²_between`` is estimated from the data (method of moments over the levels), so
a level seen a handful of times is pulled towards μ and a level seen often keeps its own mean.
Why not a gradient-boosted model: it needs a new dependency, and the plan only consumes one
marginal per planned factor; main effects are what a bounded, factorised proposal can use.

``predict`` adds the factors' shrunk deviations to μ (an additive main-effects model); its
predictive power on held-out validation rows (:func:`predictive_power`) says whether the
factors explain the error at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from genzoo_assets.core.seeds import derive_seed

MAX_PRIOR_STRENGTH = 1e6


@dataclass(frozen=True)
class ErrorModel:
    mean: float  # μ, the overall mean error
    tables: dict[str, pd.DataFrame]  # factor -> level, n, mean, shrunk, prior_strength

    def level_error(self, factor: str) -> dict[str, float]:
        t = self.tables[factor]
        return dict(zip(t["level"], t["shrunk"].astype(float)))

    def predict(self, factors: pd.DataFrame) -> np.ndarray:
        """(N,) predicted error; a level the model never saw contributes nothing."""
        pred = np.full(len(factors), self.mean)
        for factor, t in self.tables.items():
            dev = dict(zip(t["level"], t["shrunk"] - self.mean))
            pred += factors[factor].map(dev).fillna(0.0).to_numpy(dtype=np.float64)
        return pred


def _prior_strength(n: np.ndarray, means: np.ndarray, within_var: float, mu: float) -> float:
    """k = σ²/τ²; τ² from the spread of the level means beyond their sampling noise."""
    if len(n) < 2 or within_var <= 0:
        return MAX_PRIOR_STRENGTH if within_var > 0 else 0.0
    between = float(np.sum(n * (means - mu) ** 2) / np.sum(n)) - within_var * len(n) / np.sum(n)
    if between <= 0:
        return MAX_PRIOR_STRENGTH
    return float(min(within_var / between, MAX_PRIOR_STRENGTH))


def fit_error_model(factors: pd.DataFrame, error: np.ndarray, names) -> ErrorModel:
    """Fit the shrunk per-level means of ``error`` (N,) over the factor columns ``names``."""
    error = np.asarray(error, dtype=np.float64)
    if len(error) != len(factors) or len(error) == 0:
        raise ValueError(
            f"error model needs one finite error per factor row: {len(error)} errors for "
            f"{len(factors)} rows"
        )
    if not np.isfinite(error).all():
        raise ValueError("error model: errors must be finite (drop unscored samples first)")
    mu = float(error.mean())
    within = float(error.var())
    tables = {}
    for name in names:
        g = (
            pd.DataFrame({"level": factors[name].to_numpy(), "e": error})
            .groupby("level", sort=True)["e"]
            .agg(["count", "mean", "var"])
        )
        n = g["count"].to_numpy(dtype=np.float64)
        means = g["mean"].to_numpy(dtype=np.float64)
        pooled = g["var"].fillna(0.0).to_numpy() * (n - 1)
        within_var = float(pooled.sum() / max(n.sum() - len(n), 1.0)) if len(n) else within
        k = _prior_strength(n, means, within_var, mu)
        tables[name] = pd.DataFrame(
            {
                "level": g.index.astype(str),
                "n": n.astype(np.int64),
                "mean": means,
                "shrunk": (n * means + k * mu) / (n + k),
                "prior_strength": k,
            }
        )
    return ErrorModel(mu, tables)


def holdout_mask(sample_ids) -> np.ndarray:
    """A fixed half of the rows (by hash of the sample id) held out to score the model."""
    return np.array([derive_seed("error_model", str(s)) % 2 == 1 for s in sample_ids])


def predictive_power(factors: pd.DataFrame, error: np.ndarray, names) -> dict[str, float]:
    """Fit on one half of the rows, score on the other: R² against the mean and Spearman's ρ.

    NaN when either half is empty or the held-out errors are constant.
    """
    error = np.asarray(error, dtype=np.float64)
    held = holdout_mask(factors["sample_id"])
    if held.all() or not held.any():
        return {"r2": float("nan"), "spearman": float("nan"), "n_heldout": int(held.sum())}
    model = fit_error_model(factors[~held], error[~held], names)
    pred, truth = model.predict(factors[held]), error[held]
    ss = float(((truth - truth.mean()) ** 2).sum())
    r2 = 1.0 - float(((truth - pred) ** 2).sum()) / ss if ss > 0 else float("nan")
    rho = pd.Series(pred).rank().corr(pd.Series(truth).rank())
    return {"r2": r2, "spearman": float(rho), "n_heldout": int(held.sum())}
