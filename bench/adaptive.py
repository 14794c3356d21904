"""Adaptive generation at equal budget: uniform-only against uniform-then-planned.

Both arms share round 1 (shard ``000`` of every species, uniform). A regressor trained on round 1
is scored on the validation species; those errors, joined with the samples' factors, give a plan
(:mod:`genzoo_assets.core.planning`, the `sampling_plan` asset's core). Round 2 has the same size
in both arms: ``uniform`` adds shard ``001`` of every training species; ``planned`` adds the
plan's partitions (as many, shared over the training species by the plan, drawn under its
proposal: `pose_params` finds them in ``planning/rounds.parquet``). Each arm then trains from
scratch on round 1 + its round 2 with each seed, and is scored on the held-out Felidae (PCK@0.10,
PA-MPJPE, PA-V2V; errors ×1000) overall and per posture and yaw bin. The error model's predictive
power on held-out validation rows (Spearman's ρ, R²) is printed too: when it is near zero the
plan can only be noise.

    DAGSTER_HOME=... .venv/bin/python bench/adaptive.py --quick            # all demo species
    .venv/bin/python bench/adaptive.py --quick --species 10 --steps 300    # a smaller run

Prints one table (arm, seed, metrics; then mean ± half the range per arm) and writes
``adaptive.md`` and ``adaptive.png`` (per arm and seed, PA-MPJPE overall and by posture) to
``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["pck@0.10", "pa_mpjpe", "pa_v2v"]


def plot(per_posture: pd.DataFrame, table: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    ax = fig.add_subplot(1, 2, 1)
    for i, (arm, g) in enumerate(table.groupby("arm", sort=True)):
        ax.plot([i] * len(g), g["pa_mpjpe"], "o", label=arm)
    ax.set_xticks(range(table["arm"].nunique()), sorted(table["arm"].unique()))
    ax.set_ylabel("held-out PA-MPJPE ×1000")
    ax.set_title("per seed")
    ax = fig.add_subplot(1, 2, 2)
    pivot = per_posture.pivot_table(index="posture", columns="arm", values="pa_mpjpe")
    x = np.arange(len(pivot))
    for j, arm in enumerate(pivot.columns):
        ax.bar(x + 0.4 * j, pivot[arm], width=0.4, label=arm)
    ax.set_xticks(x + 0.2, pivot.index, rotation=30)
    ax.set_title("held-out PA-MPJPE by posture (mean over seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="16-sample shards, 600 steps, 2 seeds")
    ap.add_argument("--species", type=int, default=None, help="training species (default: all)")
    ap.add_argument("--samples-per-shard", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--ratio", type=float, default=2.0, help="the plan's bound")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.seeds < 2:
        ap.error("--seeds: at least two seeds per arm")
    spp = args.samples_per_shard or (16 if args.quick else 64)
    steps = args.steps or (600 if args.quick else 3000)
    mode = "quick" if args.quick else "full"
    data_dir = (args.data_dir or Path("bench-output") / "adaptive" / mode / "data").resolve()
    out = (args.out or data_dir.parent).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["GENZOO_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DAGSTER_HOME", str(data_dir.parent / "dagster_home"))
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

    from torch.utils.data import Subset

    from genzoo_assets.app import demo
    from genzoo_assets.app.instance import project_instance
    from genzoo_assets.core import layout
    from genzoo_assets.core.catalog import query
    from genzoo_assets.core.catalog.results import refresh_results
    from genzoo_assets.core.evaluate import run_benchmark
    from genzoo_assets.core.evaluate.adapters import regressor_predict_fn
    from genzoo_assets.core.evaluate.synthetic import heldout_benchmark_set
    from genzoo_assets.core.planning.factors import sample_factors
    from genzoo_assets.core.planning.inputs import read_plan_inputs
    from genzoo_assets.core.planning.plan import (
        PlanSettings,
        make_plan,
        record_round,
        sample_errors,
    )
    from genzoo_assets.core.regressor.checkpoint import load_regressor
    from genzoo_assets.core.regressor.data import CachedSplit, load_split, materialize
    from genzoo_assets.core.regressor.train import train
    from genzoo_assets.core.tables import write_table_atomic
    from genzoo_assets.defs.partitions import sample_partition_key
    from genzoo_assets.defs.resources import GenZooSettings
    from genzoo_assets.defs.training import RegressorTrainConfig, _train_config, train_augmentation

    start, load0 = time.monotonic(), os.getloadavg()[0]
    settings = GenZooSettings(
        data_dir=str(data_dir),
        samples_per_shard=spp,
        resolution=128,
        subdivisions=demo.SUBDIVISIONS,
        dataset_size=1_000_000,
    )
    instance = project_instance()
    demo.run_assets([demo.species], instance, settings)
    species = [s for s in demo.DEMO_SPECIES if s not in demo.HELDOUT_SPECIES]
    species = species[: args.species] if args.species else species
    done = {str(k) for k in instance.get_materialized_partitions(demo.images.key)}

    def generate(keys: list[tuple[str, str]], label: str) -> None:
        todo = [k for k in keys if str(sample_partition_key(*k)) not in done]
        t = time.monotonic()
        for i, (sp, shard) in enumerate(todo, 1):
            demo.run_assets(demo.PER_SAMPLE, instance, settings, sample_partition_key(sp, shard))
            done.add(str(sample_partition_key(sp, shard)))
            print(f"  {label} {i}/{len(todo)} {sp}/{shard}", flush=True)
        print(f"{label}: {len(todo)} partitions in {time.monotonic() - t:.0f} s", flush=True)

    generate([(s, "000") for s in [*species, *demo.HELDOUT_SPECIES]], "round 1")
    demo.export_shards(instance, settings)
    shards_dir = layout.shards_dir(data_dir)
    body = settings.body()
    cfg = RegressorTrainConfig(**{**demo.TRAIN_CONFIG, "max_steps": steps})
    tcfg = _train_config(cfg, body.num_betas, "cpu")
    hw = tcfg.regressor.image_size

    def splits():
        """The current export's train split (decoded once) and validation split."""
        full = CachedSplit(shards_dir, "train", input_hw=hw, augment=train_augmentation(cfg, body))
        return full, materialize(load_split(shards_dir, "val", input_hw=hw))

    def fit(data, shards_of: dict[str, set[str]], seed: int, name: str):
        full, val = data
        idx = [
            i
            for i, item in enumerate(full.items)
            if str(item[1]["sample_id"]).split(".")[1]
            in shards_of.get(str(item[1]["sample_id"]).split(".")[0], set())
        ]
        result = train(
            dataclasses.replace(tcfg, seed=seed),
            Subset(full, idx),
            val,
            body,
            data_dir.parent / f"regressor_{name}",
            resume=False,
        )
        return load_regressor(result.checkpoint_path, body_model=body), len(idx)

    def score(model, split: str) -> pd.DataFrame:
        test_set = heldout_benchmark_set(shards_dir, split=split)
        return run_benchmark(
            test_set, regressor_predict_fn(model, hw), body, method_name="genzoo"
        ).per_sample

    # round 1 → validation errors → plan
    t = time.monotonic()
    model, n1 = fit(splits(), {s: {"000"} for s in species}, 0, "round1")
    val_rows = score(model, "val")
    print(f"round-1 model: {n1} samples, {time.monotonic() - t:.0f} s", flush=True)
    pred = layout.predictions_file(data_dir, "val")
    pred.parent.mkdir(parents=True, exist_ok=True)
    write_table_atomic(val_rows, pred)
    refresh_results(data_dir, {"val": pred}, None)
    inputs = read_plan_inputs(data_dir, "pa_mpjpe")
    train_split = sorted(set(inputs.train_species["species"]))
    settings_plan = PlanSettings(ratio=args.ratio, round_shards=len(train_split))
    plan = make_plan(
        sample_errors(inputs.metrics, "pa_mpjpe"),
        inputs.samples,
        inputs.train_species,
        settings_plan,
    )
    # uniform round 2 first (shard 001), so the plan's partitions come after it
    generate([(s, "001") for s in train_split], "uniform round 2")
    demo.run_assets([demo.catalog], instance, settings)
    catalog_parts = query.query("SELECT DISTINCT species, shard FROM samples", data_dir=data_dir)
    plan = record_round(data_dir, plan, catalog_parts)
    generate([(p["species"], p["shard"]) for p in plan["partitions"]], "planned round 2")
    demo.export_shards(instance, settings)
    gen_s = time.monotonic() - start

    arms = {
        "uniform": {s: {"000", "001"} for s in train_split},
        "planned": {s: {"000"} for s in train_split},
    }
    for p in plan["partitions"]:
        arms["planned"][p["species"]].add(p["shard"])
    heldout_ids = query.query(
        "SELECT sample_id, posture, yaw_deg, pitch_deg FROM samples", data_dir=data_dir
    )
    factors = sample_factors(heldout_ids)[["sample_id", "posture", "yaw_bin"]]
    rows, per_posture, per_yaw = [], [], []
    data = splits()
    for arm, shards_of in arms.items():
        for seed in range(args.seeds):
            t = time.monotonic()
            model, n = fit(data, shards_of, seed, f"{arm}_{seed}")
            per = score(model, "heldout").merge(factors, on="sample_id", how="left")
            metrics = {c: float(per[c].mean()) for c in COLUMNS}
            metrics["pck@0.10"] *= 100.0
            metrics["pa_mpjpe"] *= 1000.0
            metrics["pa_v2v"] *= 1000.0
            rows.append({"arm": arm, "seed": seed, "n_train": n, **metrics})
            for col, sink in (("posture", per_posture), ("yaw_bin", per_yaw)):
                g = per.groupby(col)["pa_mpjpe"].mean().mul(1000.0).reset_index()
                sink.append(g.assign(arm=arm, seed=seed))
            print(f"{arm} seed {seed}: {n} samples, {time.monotonic() - t:.0f} s", flush=True)
    header = [
        f"species: {len(train_split)} training, validation {len(inputs.samples)} samples, "
        f"{spp} samples per shard, {steps} steps, plan {plan['plan_id']} ratio {args.ratio}",
        f"error model on held-out validation rows: {plan['model']}",
    ]
    text = report(pd.DataFrame(rows), per_posture, per_yaw, header, out, mode)
    print(text)
    total = time.monotonic() - start
    print(
        f"wall {total / 60:.1f} min (data {gen_s / 60:.1f} min), load average {load0:.1f} → "
        f"{os.getloadavg()[0]:.1f}; table and plot in {out}"
    )
    return 0


def report(table, per_posture, per_yaw, header, out: Path, mode: str) -> str:
    """The printed table (per seed, then mean ± half range per arm, then per factor); writes
    ``adaptive.md`` and ``adaptive.png`` into ``out``."""
    summary = table.groupby("arm")[COLUMNS].agg(
        lambda v: f"{v.mean():.1f} ± {(v.max() - v.min()) / 2:.1f}"
    )
    posture = pd.concat(per_posture).groupby(["arm", "posture"], as_index=False)["pa_mpjpe"].mean()
    yaw = pd.concat(per_yaw).groupby(["arm", "yaw_bin"], as_index=False)["pa_mpjpe"].mean()
    lines = [
        *header,
        table.to_string(index=False, float_format=lambda v: f"{v:.1f}"),
        "mean ± half range over seeds (PCK@0.10 %, errors ×1000):",
        summary.to_string(),
        "held-out PA-MPJPE by posture:",
        posture.pivot(index="posture", columns="arm", values="pa_mpjpe").to_string(
            float_format=lambda v: f"{v:.1f}"
        ),
        "held-out PA-MPJPE by yaw bin:",
        yaw.pivot(index="yaw_bin", columns="arm", values="pa_mpjpe").to_string(
            float_format=lambda v: f"{v:.1f}"
        ),
    ]
    text = "\n".join(lines)
    (out / "adaptive.md").write_text(f"# adaptive ({mode})\n\n```\n{text}\n```\n")
    plot(posture, table, out / "adaptive.png")
    return text


if __name__ == "__main__":
    raise SystemExit(main())
