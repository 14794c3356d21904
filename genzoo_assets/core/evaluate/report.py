"""Benchmark report: Markdown + self-contained HTML (figures as PNG files next to them, relative links).

Figures use matplotlib's object API (``Figure`` renders with Agg, no pyplot global state), so
reports can be written from worker threads.
"""

from __future__ import annotations

import html
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from genzoo_assets.core.evaluate import metrics
from genzoo_assets.core.evaluate.benchmark import ERROR_COLUMNS, METRIC_COLUMNS, BenchmarkResult
from genzoo_assets.core.evaluate.gallery import GalleryItem, draw_overlay
from genzoo_assets.core.paths import atomic_path

CURVE_THRESHOLDS = metrics.AUC_THRESHOLDS  # the curve AniMer's AUC integrates
PALETTE = ("#2f6fdf", "#e4572e", "#17a398", "#f3a712", "#8e5ad6", "#6c757d")
HEADERS = {
    "pa_mpjpe": "PA-MPJPE ↓",
    "s_mpjpe": "S-MPJPE ↓",
    "pa_v2v": "PA-V2V ↓",
    "s_v2v": "S-V2V ↓",
    "pck@0.10": "PCK@0.10 ↑",
    "pck@0.15": "PCK@0.15 ↑",
    "pck_crop@0.5": "crop PCK@0.5 ↑",
    "auc": "AUC ↑",
}
NOTES = (
    "3D errors: mean per-sample error ×1000 after alignment (S-: centring + least-squares scale; "
    "PA-: similarity Procrustes without reflections); MPJPE over the 26 Animal3D keypoints, V2V over "
    "all mesh vertices (— when the prediction's and the ground truth's meshes differ in topology). "
    "PCK in percent, as AniMer's evaluator: per image the fraction of its visible keypoints within "
    "τ, averaged over images (images without a visible keypoint are left out and counted); "
    "@0.10/@0.15 normalised by sqrt(mask area). AUC: AniMer's, that PCK (sqrt(mask area)) "
    "integrated over 100 thresholds in [0, 1], in percent. crop PCK@0.5: pixel error below half "
    "the crop height (4D-Humans' crop units), a loose sanity measure on which the mean pose scores "
    "near 100; it is not the PCK@0.5 of Animal3D's protocol in GenZoo's table (ViTPose 97.0, HMR* "
    "63.1) and must not be compared with it."
)

GALLERY_NOTE = (
    "Predicted mesh (blue) projected with the predicted camera into the input crop; "
    "green dots: GT keypoints, red: predicted, joined by white lines."
)


def pck_curve(errors: np.ndarray, thresholds=CURVE_THRESHOLDS) -> np.ndarray:
    """PCK (fraction, mean over images with a visible keypoint) at each threshold, from
    normalised keypoint errors (B, K) (NaN = invisible)."""
    per_image = metrics.image_pck(errors, thresholds)
    scored = np.isfinite(per_image[0])
    return per_image[:, scored].mean(axis=1) if scored.any() else np.full(len(thresholds), np.nan)


def _save_png(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def _style(ax, title: str) -> None:
    ax.set_title(title, fontsize=11, loc="left", fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.3, linewidth=0.6)


def plot_pck_curve(result: BenchmarkResult, path: Path) -> None:
    fig = Figure(figsize=(6.0, 3.8))
    ax = fig.subplots()
    auc = _overall(result)["auc"]
    for i, (method, err) in enumerate(result.keypoint_errors.items()):
        ax.plot(
            CURVE_THRESHOLDS,
            100 * pck_curve(err),
            color=PALETTE[i % len(PALETTE)],
            linewidth=2,
            label=f"{method} (AUC {_fmt(auc[method])})",
        )
    for tau in (0.10, 0.15):
        ax.axvline(tau, color="0.6", linestyle=":", linewidth=1)
    ax.set_xlabel("threshold τ  (pixel error / sqrt(mask area))")
    ax.set_ylabel("PCK (%)")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 100)
    ax.legend(frameon=False)
    _style(ax, f"PCK vs threshold — {result.test_set}")
    _save_png(fig, path)


def plot_family_bars(result: BenchmarkResult, path: Path, metric: str = "pa_mpjpe") -> None:
    s = result.summary[result.summary["group"] == "family"]
    table = s.pivot(index="value", columns="method", values=metric).sort_index()
    methods = [
        m for m in result.keypoint_errors if m in table.columns
    ]  # run order: same colours as the curve
    fig = Figure(figsize=(max(5.0, 0.9 * len(table) * max(1, len(methods)) ** 0.5 + 2), 3.8))
    ax = fig.subplots()
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(table))
    for i, m in enumerate(methods):
        bars = ax.bar(
            x + (i - (len(methods) - 1) / 2) * width,
            table[m].to_numpy(),
            width,
            color=PALETTE[i % len(PALETTE)],
            label=m,
        )
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
    ax.set_xticks(
        x,
        table.index,
        rotation=30 if len(table) > 5 else 0,
        ha="right" if len(table) > 5 else "center",
    )
    ax.set_ylabel(f"{HEADERS[metric].split()[0]} (×1000)")
    ax.set_ylim(0, float(np.nanmax(table[methods].to_numpy())) * 1.25)
    ax.legend(frameon=False, ncols=len(methods), loc="upper left")
    _style(ax, f"{HEADERS[metric].split()[0]} per family — {result.test_set}")
    _save_png(fig, path)


def _overall(result: BenchmarkResult) -> pd.DataFrame:
    s = result.summary[result.summary["group"] == "overall"].set_index("method")
    return s[["n", "n_no_visible", *METRIC_COLUMNS]]


def _best(table: pd.DataFrame) -> dict[str, float]:
    return {c: (table[c].min() if c in ERROR_COLUMNS else table[c].max()) for c in METRIC_COLUMNS}


def _fmt(v: float) -> str:
    return "—" if not np.isfinite(v) else f"{v:.1f}"


def _is_best(v: float, best: float) -> bool:
    return bool(np.isfinite(v) and np.isclose(v, best))


def _provenance_note(result: BenchmarkResult) -> str:
    ks = result.keypoint_sets
    sets = (
        f"Keypoint sets: prediction {ks['prediction']}, ground truth {ks['ground_truth']}. "
        if ks
        else ""
    )
    excluded = int(result.summary[result.summary["group"] == "overall"]["n_no_visible"].max())
    return sets + f"Images without a visible keypoint (left out of PCK/AUC): {excluded}."


def _markdown(
    result: BenchmarkResult, figs: dict[str, str], gallery: list[tuple[str, str, str]]
) -> str:
    t = _overall(result)
    best = _best(t)
    cell = lambda c, v: f"**{v:.1f}**" if _is_best(v, best[c]) else _fmt(v)  # noqa: E731
    lines = [
        f"# Benchmark — {result.test_set}",
        "",
        NOTES,
        "",
        _provenance_note(result),
        "",
        "| method | n | " + " | ".join(HEADERS[c] for c in METRIC_COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(METRIC_COLUMNS),
    ]
    for m, row in t.iterrows():
        lines.append(
            f"| {m} | {int(row['n'])} | "
            + " | ".join(cell(c, row[c]) for c in METRIC_COLUMNS)
            + " |"
        )
    lines += [
        "",
        "## PCK vs threshold",
        "",
        f"![PCK curve]({figs['pck_curve']})",
        "",
        "## PA-MPJPE per family",
        "",
        f"![PA-MPJPE per family]({figs['family_bars']})",
        "",
    ]
    fam = result.summary[result.summary["group"] != "overall"]
    lines += [
        "## Per family / species",
        "",
        "| method | group | value | n | " + " | ".join(HEADERS[c] for c in METRIC_COLUMNS) + " |",
        "|---|---|---|---:|" + "---:|" * len(METRIC_COLUMNS),
    ]
    for _, r in fam.iterrows():
        lines.append(
            f"| {r['method']} | {r['group']} | {r['value']} | {r['n']} | "
            + " | ".join(_fmt(r[c]) for c in METRIC_COLUMNS)
            + " |"
        )
    for label in ("best", "worst"):
        shots = [(f, t) for f, lab, t in gallery if lab == label]
        if shots:
            lines += [
                "",
                f"## Gallery — {label}",
                "",
                GALLERY_NOTE,
                "",
                " ".join(f"![{t}]({f})" for f, t in shots),
            ]
    return "\n".join(lines) + "\n"


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
color:#1d2330;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}
h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #e3e6ee;padding-bottom:.2em}
p.note{color:#5a6275;font-size:.9em;line-height:1.4}table{border-collapse:collapse;font-size:.9em;margin:.6em 0}
th,td{padding:.35em .7em;border-bottom:1px solid #e6e9f0;text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f4f6fa;font-weight:600}tr:hover td{background:#fafbfd}td.best{font-weight:700;color:#1b5fd1}
.figs{display:flex;flex-wrap:wrap;gap:1.5em}.figs img{max-width:520px;width:100%}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:.8em}
.gallery figure{margin:0}.gallery img{width:100%;border-radius:6px;box-shadow:0 1px 4px #0002}
.gallery figcaption{font-size:.75em;color:#5a6275;margin-top:.2em}details{margin-top:1em}"""


def _table_html(df: pd.DataFrame, lead: list[str], best: dict[str, float] | None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in lead) + "".join(
        f"<th>{HEADERS[c]}</th>" for c in METRIC_COLUMNS
    )
    body = []
    for _, r in df.iterrows():
        cells = "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in lead)
        for c in METRIC_COLUMNS:
            cls = ' class="best"' if best is not None and _is_best(r[c], best[c]) else ""
            cells += f"<td{cls}>{_fmt(r[c])}</td>"
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html(
    result: BenchmarkResult, figs: dict[str, str], gallery: list[tuple[str, str, str]]
) -> str:
    t = _overall(result).reset_index()
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Benchmark — {html.escape(result.test_set)}</title>",
        f"<style>{CSS}</style></head><body><h1>Benchmark — {html.escape(result.test_set)}</h1>",
        f"<p class='note'>{html.escape(NOTES)}</p>",
        f"<p class='note'>{html.escape(_provenance_note(result))}</p>",
        _table_html(t, ["method", "n"], _best(t)),
        "<h2>Curves</h2><div class='figs'>",
        f"<img src='{figs['pck_curve']}' alt='PCK vs threshold'>"
        f"<img src='{figs['family_bars']}' alt='PA-MPJPE per family'></div>",
    ]
    for label in ("best", "worst"):
        shots = [(f, cap) for f, lab, cap in gallery if lab == label]
        if shots:
            parts.append(
                f"<h2>Gallery — {label}</h2><p class='note'>{html.escape(GALLERY_NOTE)}</p><div class='gallery'>"
            )
            parts += [
                f"<figure><img src='{f}' alt='{html.escape(cap)}'><figcaption>{html.escape(cap)}</figcaption></figure>"
                for f, cap in shots
            ]
            parts.append("</div>")
    groups = result.summary[result.summary["group"] != "overall"]
    parts.append(
        "<details><summary>Per family / species</summary>"
        + _table_html(groups, ["method", "group", "value", "n"], None)
        + "</details></body></html>"
    )
    return "\n".join(parts)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_report(
    result: BenchmarkResult, out_dir: str | Path, gallery_items: list[GalleryItem] | None = None
) -> dict:
    """Write ``report.md``, ``report.html``, ``pck_curve.png``, ``family_pa_mpjpe.png``,
    ``gallery_<label>_<k>.png`` and ``predictions.parquet`` (the per-sample rows) into ``out_dir``.

    Returns ``{"markdown", "html", "pck_curve", "family_bars", "predictions", "gallery": [...]}`` paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"pck_curve": out / "pck_curve.png", "family_bars": out / "family_pa_mpjpe.png"}
    plot_pck_curve(result, paths["pck_curve"])
    plot_family_bars(result, paths["family_bars"])
    gallery, gallery_paths = [], []
    counts: dict[str, int] = {}
    for item in gallery_items or []:
        k = counts[item.label] = counts.get(item.label, -1) + 1
        p = out / f"gallery_{item.label}_{k:02d}.png"
        ok, buf = cv2.imencode(".png", cv2.cvtColor(draw_overlay(item), cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"PNG encoding failed for gallery item {item.title!r}")
        with atomic_path(p) as tmp:
            tmp.write_bytes(buf.tobytes())
        gallery.append((p.name, item.label, item.title))
        gallery_paths.append(p)
    rel = {k: v.name for k, v in paths.items()}
    paths["markdown"], paths["html"] = out / "report.md", out / "report.html"
    _write_text(paths["markdown"], _markdown(result, rel, gallery))
    _write_text(paths["html"], _html(result, rel, gallery))
    paths["predictions"] = out / "predictions.parquet"
    with atomic_path(paths["predictions"]) as tmp:
        result.per_sample.to_parquet(tmp, index=False)
    paths["gallery"] = gallery_paths
    return paths
