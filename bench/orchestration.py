"""Orchestration overhead: one species × shard partition through Dagster vs. the same core calls.

The Dagster path materialises shape_params → pose_params → control_renders → captions → prompts →
images with ``dg.materialize`` on an ephemeral instance (in-process: the cost measured is Dagster's
own bookkeeping, events, resource set-up and asset checks, not process start-up). The plain path
calls the core partition functions the assets call, with the same inputs and the same Parquet and
preview writes. Repetitions are interleaved (order alternating) after one untimed warm-up (imports,
the body model, the EGL context: shared by both paths in this process). Dagster's console logger
is set to WARNING (its events are still recorded in the instance, as in the web UI). Both paths
must produce identical ground truth (every table column except provenance, which holds the run
id, and identical image pixels). Both wall time and this process's CPU time (all threads, which
includes Mesa's render threads) are measured; the target, Dagster / plain <= 1.10, is checked on
the median CPU-time ratio, which other processes on a shared machine do not inflate the way they
inflate wall time.

    .venv/bin/python bench/orchestration.py [--samples 64 --resolution 128 --repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dagster as dg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from genzoo_assets.core import imagegen  # noqa: E402
from genzoo_assets.core.render.contact_sheet import write_contact_sheet  # noqa: E402
from genzoo_assets.core.render.partition import render_partition  # noqa: E402
from genzoo_assets.core.sampling.partition import sample_poses_partition, sample_shapes_partition  # noqa: E402
from genzoo_assets.core.sampling.poses import make_pose_sampler  # noqa: E402
from genzoo_assets.core.sampling.shapes import make_shape_sampler  # noqa: E402
from genzoo_assets.core.taxonomy import frame  # noqa: E402
from genzoo_assets.core.text import partition as text  # noqa: E402
from genzoo_assets.defs.images import images  # noqa: E402
from genzoo_assets.defs.io import read_merged, read_partition, write_partition  # noqa: E402
from genzoo_assets.defs.partitions import sample_partition_key  # noqa: E402
from genzoo_assets.defs.render import control_renders  # noqa: E402
from genzoo_assets.defs.resources import GenZooSettings  # noqa: E402
from genzoo_assets.defs.sampling import pose_params, shape_params  # noqa: E402
from genzoo_assets.defs.species import species  # noqa: E402
from genzoo_assets.defs.text import captions, prompts  # noqa: E402

TARGET_RATIO = 1.10
TABLES = ["shape_params", "pose_params", "control_renders", "captions", "prompts", "images"]
PER_SAMPLE_ASSETS = [shape_params, pose_params, control_renders, captions, prompts, images]
RUN_SPECIFIC = {"provenance"}  # holds the run id
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_dagster(
    instance: dg.DagsterInstance, settings: GenZooSettings, species_key: str, shard: str
) -> None:
    result = dg.materialize(
        PER_SAMPLE_ASSETS,
        instance=instance,
        resources={"settings": settings},
        partition_key=sample_partition_key(species_key, shard),
        raise_on_error=True,
        run_config=QUIET,
    )
    assert result.success


def run_plain(settings: GenZooSettings, species_key: str, shard: str, run_id: str) -> None:
    """What the six assets do, minus Dagster: same core calls, same defaults, same files."""
    root, body = settings.root(), settings.body()
    row = frame.species_row(root, species_key)
    shapes = sample_shapes_partition(
        row,
        shard,
        settings.shard_indices(shard),
        make_shape_sampler("prior", body),
        base_seed=settings.base_seed,
        run_id=run_id,
    )
    write_partition(root, "shape_params", species_key, shard, shapes)

    shapes = read_partition(root, "shape_params", species_key, shard)
    poses = sample_poses_partition(
        shapes,
        body,
        make_pose_sampler("procedural", body),
        camera_model="perspective",
        resolution=settings.resolution,
        base_seed=settings.base_seed,
        run_id=run_id,
    )
    write_partition(root, "pose_params", species_key, shard, poses)

    rows = read_merged(root, ["pose_params", "shape_params"], species_key, shard)
    renders = render_partition(rows, body, root, resolution=settings.resolution)
    write_partition(root, "control_renders", species_key, shard, renders)
    write_contact_sheet(renders, root)

    rows = read_merged(root, ["pose_params", "control_renders"], species_key, shard)
    caps = text.caption_partition(
        rows, text.make_captioner("geometric"), body.canonical_rotation, data_dir=root
    )
    write_partition(root, "captions", species_key, shard, caps)

    rows = read_partition(root, "captions", species_key, shard)
    prompt_df = text.prompt_partition(
        rows,
        frame.species_row(root, species_key),
        text.make_prompter("template"),
        text.TokenBudget(max_tokens=77),
    )
    write_partition(root, "prompts", species_key, shard, prompt_df)

    rows = read_merged(
        root,
        ["prompts", "captions", "control_renders", "pose_params", "shape_params"],
        species_key,
        shard,
    )
    info = {
        species_key: {
            k: row[k] for k in ("common_name", "scientific_name", "genus", "family", "order")
        }
        | ({"breed": row["common_name"]} if row["is_dog"] else {})
    }
    df = imagegen.generate_partition(
        rows,
        imagegen.make_generator("render"),
        root,
        threshold=imagegen.DEFAULT_THRESHOLD,
        batch_size=4,
        body_model=body,
        species_info=info,
        base_seed=settings.base_seed,
        run_id=run_id,
    )
    write_partition(root, "images", species_key, shard, df)
    imagegen.write_image_sheet(
        df.merge(rows[["sample_id", "canny_path"]], on="sample_id"), root, f"{species_key}__{shard}"
    )


def assert_identical(root_a: Path, root_b: Path, species_key: str, shard: str) -> int:
    """Every ground-truth column equal and every generated image pixel-identical; returns rows compared."""
    for table in TABLES:
        a = read_partition(root_a, table, species_key, shard)
        b = read_partition(root_b, table, species_key, shard)
        cols = [c for c in a.columns if c not in RUN_SPECIFIC]
        assert list(a.columns) == list(b.columns), f"{table}: columns differ"
        pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True, obj=table)
    imgs = read_partition(root_a, "images", species_key, shard)
    for rel in imgs["image_path"]:
        pa, pb = (np.asarray(Image.open(root / rel)) for root in (root_a, root_b))
        assert np.array_equal(pa, pb), f"image {rel} differs between the Dagster and plain runs"
    return len(imgs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--samples", type=int, default=64, help="samples in the partition (default 64)"
    )
    parser.add_argument(
        "--resolution", type=int, default=128, help="render/image size in px (default 128)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed repetitions of each path (default 3)"
    )
    parser.add_argument(
        "--species", default="dog-labrador-retriever", help="species key of the partition"
    )
    parser.add_argument("--shard", default="000")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="genzoo-bench-orch-") as tmp:
        root_dg, root_plain = Path(tmp) / "dagster", Path(tmp) / "plain"
        s_dg, s_plain = (
            GenZooSettings(
                data_dir=str(r), samples_per_shard=args.samples, resolution=args.resolution
            )
            for r in (root_dg, root_plain)
        )
        instance = dg.DagsterInstance.ephemeral()
        assert dg.materialize(
            [species], instance=instance, resources={"settings": s_dg}, run_config=QUIET
        ).success
        frame.refresh_species_table(
            root_plain,
            dog_fraction=s_plain.dog_fraction,
            dataset_size=s_plain.dataset_size,
            samples_per_shard=s_plain.samples_per_shard,
        )
        frame.species_row(
            root_plain, args.species
        )  # a clear error for an unknown species, before timing

        paths = {
            "dagster": lambda: run_dagster(instance, s_dg, args.species, args.shard),
            "plain": lambda: run_plain(s_plain, args.species, args.shard, run_id="bench-plain"),
        }
        paths["dagster"]()  # warm-up
        wall: dict[str, list[float]] = {k: [] for k in paths}
        cpu: dict[str, list[float]] = {k: [] for k in paths}
        for rep in range(args.repeats):
            order = list(paths) if rep % 2 == 0 else list(reversed(paths))
            for name in order:
                w0, c0 = time.perf_counter(), time.process_time()
                paths[name]()
                wall[name].append(time.perf_counter() - w0)
                cpu[name].append(time.process_time() - c0)
            print(
                f"rep {rep + 1}: "
                + "  ".join(
                    f"{k} {wall[k][-1]:.2f} s wall / {cpu[k][-1]:.2f} s cpu" for k in paths
                ),
                flush=True,
            )
        rows = assert_identical(root_dg, root_plain, args.species, args.shard)

    print(
        f"partition {args.species}/{args.shard}: {rows} samples at {args.resolution} px, outputs identical"
    )
    for label, t in (("wall", wall), ("cpu", cpu)):
        med = {k: statistics.median(v) for k, v in t.items()}
        print(
            f"{label:4s}  dagster: best {min(t['dagster']):.2f} s, median {med['dagster']:.2f} s   "
            f"plain: best {min(t['plain']):.2f} s, median {med['plain']:.2f} s   ratio: best "
            f"{min(t['dagster']) / min(t['plain']):.3f}, median {med['dagster'] / med['plain']:.3f}"
        )
    ratio = statistics.median(cpu["dagster"]) / statistics.median(cpu["plain"])
    print(
        f"ratio dagster/plain (median CPU time) = {ratio:.3f}  "
        f"(target <= {TARGET_RATIO:.2f}: {'PASS' if ratio <= TARGET_RATIO else 'FAIL'})"
    )
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
