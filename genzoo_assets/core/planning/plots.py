"""The plan's two figures for the UI: validation error by factor level, and the proposal's weight
(proposal / base) per planned level. matplotlib's object API (Agg, no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from genzoo_assets.core import paths


def _save(fig: Figure, path: Path) -> Path:
    with paths.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def plot_error_by_factor(plan: dict, path: Path) -> Path:
    """One panel per factor: each level's raw mean error (bar) and its shrunk estimate (dot)."""
    tables = plan["error_by_factor"]
    fig = Figure(figsize=(4 * min(len(tables), 4), 3.2 * int(np.ceil(len(tables) / 4))))
    for i, (factor, t) in enumerate(tables.items()):
        ax = fig.add_subplot(int(np.ceil(len(tables) / 4)), 4, i + 1)
        x = np.arange(len(t["level"]))
        ax.bar(x, t["mean"], color="#9ab", label="mean")
        ax.plot(x, t["shrunk"], "o", color="#c33", label="shrunk")
        ax.axhline(plan["inputs"]["mean_error"], color="k", lw=0.8)
        ax.set_xticks(x, [str(v)[:10] for v in t["level"]], rotation=60, fontsize=7)
        ax.set_title(f"{factor} (k={t['prior_strength']:.3g})", fontsize=9)
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(f"validation {plan['settings']['metric']} by factor")
    fig.tight_layout()
    return _save(fig, path)


def plot_weights(plan: dict, path: Path) -> Path:
    """One panel per planned factor: proposal / base per level, with the bound's two lines."""
    factors = plan["factors"]
    r = plan["settings"]["ratio"]
    fig = Figure(figsize=(4 * len(factors), 3.2))
    for i, (factor, d) in enumerate(factors.items()):
        ax = fig.add_subplot(1, len(factors), i + 1)
        ratio = np.array(d["proposal"]) / np.array(d["base"])
        x = np.arange(len(ratio))
        ax.bar(x, ratio, color=np.where(ratio >= 1, "#c63", "#369"))
        for y in (1.0, r, 1.0 / r):
            ax.axhline(y, color="k", lw=0.8 if y == 1.0 else 0.5, ls="-" if y == 1.0 else "--")
        ax.set_xticks(x, [str(v)[:10] for v in d["levels"]], rotation=60, fontsize=7)
        ax.set_title(f"{factor}: proposal / base", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
