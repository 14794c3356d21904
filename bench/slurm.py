"""SLURM executor vs multiprocess executor: one 64-sample partition of every per-sample asset.

Both runs execute shape_params → pose_params → control_renders → captions → prompts → images for
one species × shard, each step in its own process: a child process (multiprocess executor) or a
SLURM batch job (slurm executor, on the cluster ``SLURM_CONF`` names, or else on a local
single-node cluster that this script starts with ``deploy/slurm/local-cluster.sh``). It prints the
wall-time ratio SLURM / multiprocess, and per step where the time between "step ready" and "step
done" goes, from the runs' own events:

- start:   launched (after ``sbatch`` returns, or before forking the child) → STEP_START: for
           SLURM, scheduling and job start (shown on its own from SLURM's job-completion log
           when this script started the cluster), then a fresh interpreter importing Dagster,
           torch and the code location and building the plan; for multiprocess, the same
           interpreter start and loading in a spawned child;
- compute: STEP_START → STEP_SUCCESS (the asset body, identical work in both);
- notice:  STEP_SUCCESS → the next step launched (event-log tailing; for SLURM also the ``sbatch``
           call, timed on its own below).

It also times submitting N trivial jobs one ``sbatch`` each against one ``sbatch --array`` of N,
which is what a job-array design would save. Both runs must write identical ground truth.

    .venv/bin/python bench/slurm.py [--samples 64 --resolution 128 --species panthera-leo] [--slurm-first]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import dagster as dg  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genzoo_assets.defs.images import images  # noqa: E402
from genzoo_assets.defs.partitions import sample_partition_key  # noqa: E402
from genzoo_assets.defs.render import control_renders  # noqa: E402
from genzoo_assets.defs.resources import GenZooSettings  # noqa: E402
from genzoo_assets.defs.sampling import pose_params, shape_params  # noqa: E402
from genzoo_assets.defs.species import species  # noqa: E402
from genzoo_assets.defs.text import captions, prompts  # noqa: E402
from genzoo_assets.slurm.executor import slurm_executor  # noqa: E402

PER_SAMPLE = [shape_params, pose_params, control_renders, captions, prompts, images]
NAMES = [a.key.to_user_string() for a in PER_SAMPLE]
CLUSTER = REPO / "deploy" / "slurm" / "local-cluster.sh"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _job(executor) -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=[species, *PER_SAMPLE],
        resources={"settings": GenZooSettings()},
        jobs=[dg.define_asset_job("per_sample", selection=NAMES)],
        executor=executor,
    )
    return defs.resolve_job_def("per_sample")


def multiprocess_job() -> dg.JobDefinition:
    return _job(dg.multiprocess_executor)


def slurm_job() -> dg.JobDefinition:
    return _job(slurm_executor)


def _times(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for e in instance.all_logs(run_id):
        if e.step_key and e.dagster_event:
            out.setdefault(e.step_key, {}).setdefault(e.dagster_event.event_type_value, e.timestamp)
    return out


def _phases(times: dict[str, dict[str, float]]) -> dict[str, list[float]]:
    phases = {"start": [], "compute": [], "notice": []}
    for i, name in enumerate(NAMES):
        t = times[name]
        phases["start"].append(t["STEP_START"] - t["STEP_WORKER_STARTING"])
        phases["compute"].append(t["STEP_SUCCESS"] - t["STEP_START"])
        if i + 1 < len(NAMES):
            phases["notice"].append(times[NAMES[i + 1]]["STEP_WORKER_STARTING"] - t["STEP_SUCCESS"])
    return phases


def _ground_truth(root: Path) -> dict[str, pd.DataFrame]:
    return {
        p.parent.parent.name: pd.read_parquet(p).drop(columns=["provenance"], errors="ignore")
        for name in NAMES
        for p in (root / name).rglob("*.parquet")
    }


def _scheduling_latency(jobcomp: Path, run_id: str) -> list[float]:
    """Submit → start of this run's jobs, from SLURM's job-completion log (1 s resolution)."""
    from datetime import datetime

    out = []
    for line in jobcomp.read_text().splitlines() if jobcomp.exists() else []:
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if fields.get("Name", "").startswith(f"genzoo-{run_id[:8]}-"):
            out.append(
                (
                    datetime.fromisoformat(fields["StartTime"])
                    - datetime.fromisoformat(fields["SubmitTime"])
                ).total_seconds()
            )
    return out


def _sbatch_timing(n: int, log_dir: Path) -> tuple[float, float]:
    """Seconds to submit n trivial jobs one sbatch each, and as one array of n."""
    common = [
        "sbatch",
        "--parsable",
        "--job-name=genzoo-bench",
        f"--output={log_dir}/%j.out",
        "--wrap=true",
    ]
    t = time.perf_counter()
    for _ in range(n):
        subprocess.run(common, check=True, capture_output=True)
    single = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run(
        [*common[:-1], f"--array=0-{n - 1}", "--wrap=true"], check=True, capture_output=True
    )
    array = time.perf_counter() - t
    return single, array


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--species", default="panthera-leo")
    ap.add_argument("--sbatch-jobs", type=int, default=20)
    ap.add_argument(
        "--slurm-first",
        action="store_true",
        help="run SLURM first (on a shared machine the order matters)",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="genzoo-bench-slurm-"))
    tmp.chmod(0o755)
    started_cluster = not os.environ.get("SLURM_CONF")
    if started_cluster:
        env = {**os.environ, "GENZOO_SLURM_DIR": str(tmp / "cluster")}
        subprocess.run([str(CLUSTER), "start"], env=env, check=True, capture_output=True)
        os.environ["SLURM_CONF"] = str(tmp / "cluster" / "slurm.conf")
    try:
        (tmp / "home").mkdir()
        key = sample_partition_key(args.species, "000")
        tags = {
            "dagster/partition": str(key),
            "dagster/partition/species": args.species,
            "dagster/partition/shard": "000",
        }
        walls, phases, tables, scheduled = {}, {}, {}, []
        with dg.instance_for_test(temp_dir=str(tmp / "home")) as instance:
            runs = [
                ("multiprocess", multiprocess_job, {"max_concurrent": 2}),
                (
                    "slurm",
                    slurm_job,
                    {"log_dir": str(tmp / "slurm-logs"), "poll_interval_seconds": 1},
                ),
            ]
            for kind, job_fn, execution in runs[::-1] if args.slurm_first else runs:
                root = tmp / kind
                settings = {
                    "data_dir": str(root),
                    "samples_per_shard": args.samples,
                    "resolution": args.resolution,
                }
                dg.materialize(
                    [species],
                    instance=instance,
                    resources={"settings": GenZooSettings(**settings)},
                    run_config=QUIET,
                )
                t = time.perf_counter()
                result = dg.execute_job(
                    dg.reconstructable(job_fn),
                    instance=instance,
                    tags=tags,
                    run_config={
                        **QUIET,
                        "resources": {"settings": {"config": settings}},
                        "execution": {"config": execution},
                    },
                )
                walls[kind] = time.perf_counter() - t
                if not result.success:
                    print(f"{kind} run failed (run {result.run_id}); see {tmp}", file=sys.stderr)
                    return 1
                phases[kind] = _phases(_times(instance, result.run_id))
                if kind == "slurm":
                    scheduled = _scheduling_latency(tmp / "cluster" / "jobcomp.log", result.run_id)
                tables[kind] = _ground_truth(root)
        for name, table in tables["multiprocess"].items():
            pd.testing.assert_frame_equal(tables["slurm"][name], table, obj=name)
        single, array = _sbatch_timing(args.sbatch_jobs, tmp)
    finally:
        if started_cluster:
            subprocess.run(
                [str(CLUSTER), "stop"],
                env={**os.environ, "GENZOO_SLURM_DIR": str(tmp / "cluster")},
                capture_output=True,
            )

    print(
        f"one {args.samples}-sample partition ({args.species}, {args.resolution} px), {len(NAMES)} steps in a chain; "
        f"identical ground truth in both runs"
    )
    print(f"{'phase (s, mean per step)':<28}{'multiprocess':>14}{'slurm':>10}{'slurm - mp':>12}")
    for phase in ("start", "compute", "notice"):
        mp, sl = (
            statistics.mean(phases["multiprocess"][phase]),
            statistics.mean(phases["slurm"][phase]),
        )
        print(f"{phase:<28}{mp:>14.2f}{sl:>10.2f}{sl - mp:>12.2f}")
    overhead = {k: sum(statistics.mean(phases[k][p]) for p in ("start", "notice")) for k in phases}
    print(
        f"{'per-step overhead':<28}{overhead['multiprocess']:>14.2f}{overhead['slurm']:>10.2f}"
        f"{overhead['slurm'] - overhead['multiprocess']:>12.2f}"
    )
    print(
        f"wall time: multiprocess {walls['multiprocess']:.1f} s, slurm {walls['slurm']:.1f} s, "
        f"ratio slurm / multiprocess = {walls['slurm'] / walls['multiprocess']:.2f}"
    )
    if scheduled:
        print(
            f"of slurm's start: SLURM scheduling (submit → job start) {statistics.mean(scheduled):.1f} s per step"
        )
    print(
        f"sbatch: {args.sbatch_jobs} jobs one by one {single:.2f} s ({single / args.sbatch_jobs * 1000:.0f} ms each), "
        f"as one array {array:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
