"""The loss curve PNG shown in the Dagster UI (matplotlib, Agg: no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

TERMS = ("loss", "loss_keypoints_2d", "loss_global_orient", "loss_body_pose", "loss_betas")


def plot_loss_curve(history: pd.DataFrame, path) -> None:
    """Training terms per step (thin) and validation terms per evaluation (markers), log scale."""
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    train = history[history["split"] == "train"]
    val = history[history["split"] == "val"]
    for colour, term in zip(colours, TERMS):
        if len(train):
            ax.plot(
                train["step"], train[term], color=colour, alpha=0.45, lw=1, label=f"train {term}"
            )
        if len(val):
            ax.plot(val["step"], val[term], color=colour, marker="o", lw=2, label=f"val {term}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (weighted)")
    ax.set_title("GenZoo regressor: training and validation losses")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
