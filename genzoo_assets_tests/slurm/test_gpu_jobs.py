"""GPU steps on SLURM: GPU jobs side by side from an instance a `genzoo` command opened, and the
offline pipeline on a cluster without any gres (its steps ask for no GPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets_tests.slurm import slurm_jobs
from genzoo_assets_tests.slurm.conftest import jobcomp, local_cluster, slurm_job_ids

pytestmark = pytest.mark.slow

RUN = """
import json, sys, dagster as dg
from genzoo_assets_tests.slurm import slurm_jobs
home, job, selection, run_config, tags = sys.argv[1:]
result = dg.execute_job(
    dg.reconstructable(getattr(slurm_jobs, job)), instance=dg.DagsterInstance.from_config(home),
    run_config=json.loads(run_config), tags=json.loads(tags),
    asset_selection=[dg.AssetKey(k) for k in json.loads(selection)] or None)
sys.exit(0 if result.success else 1)
"""
OPEN_INSTANCE = "from genzoo_assets.app.instance import project_instance; project_instance()"


def _env(home: Path, **extra) -> dict:
    env = {
        k: v for k, v in os.environ.items() if k not in ("GENZOO_FAKE_GPUS", "GENZOO_SLURM_CONFIG")
    }
    return {**env, "DAGSTER_HOME": str(home), **extra}


def _start(home: Path, job: str, env: dict, selection=(), run_config=None, tags=None):
    args = [
        str(home),
        job,
        json.dumps(list(selection)),
        json.dumps(run_config or {}),
        json.dumps(tags or {}),
    ]
    return subprocess.Popen([sys.executable, "-c", RUN, *args], env=env)


def _opened_by_genzoo(tmp_path: Path, env: dict) -> dg.DagsterInstance:
    """The instance as a `genzoo` command leaves it (its project_instance), on this GPU-less host."""
    subprocess.run([sys.executable, "-c", OPEN_INSTANCE], env=env, check=True, timeout=300)
    return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])


def test_four_gpu_jobs_run_at_once_for_a_four_partition_backfill(slurm_cluster, tmp_path):
    env = _env(tmp_path / "home", GENZOO_EXECUTOR="slurm", GENZOO_DATA_DIR=str(tmp_path / "data"))
    instance = _opened_by_genzoo(tmp_path, env)
    limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
    assert limits["gpu"] == 200  # SLURM's gpu_slots, not this host's GPU count (none)
    config = {
        "execution": {"config": {"log_dir": str(tmp_path / "logs"), "poll_interval_seconds": 1}},
        "ops": {"gpu_sleep": {"config": {"seconds": 45}}},
    }
    runs = [
        _start(
            tmp_path / "home",
            "gpu_partitions_job",
            env,
            run_config=config,
            tags={"dagster/partition": key},
        )
        for key in slurm_jobs.GPU_PARTITIONS.get_partition_keys()
    ]
    assert [run.wait(timeout=900) for run in runs] == [0, 0, 0, 0]
    spans, gpus = [], set()
    records = jobcomp(slurm_cluster)
    for run in instance.get_runs(dg.RunsFilter(job_name="gpu_partitions")):
        (event,) = [
            e
            for e in instance.all_logs(run.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
        ]
        meta = event.dagster_event.materialization.metadata
        spans.append((meta["start"].value, meta["end"].value))
        gpus.add(meta["slurm_job_gpus"].value or meta["cuda_visible_devices"].value)
        ((job_id,),) = slurm_job_ids(instance, run.run_id).values()
        assert records[job_id]["JobState"] == "COMPLETED"
        script = next((tmp_path / "logs" / run.run_id).glob("gpu_sleep.0.sbatch")).read_text()
        assert "--gres=gpu:1" in script and "--mem=64G" in script and "--cpus-per-task=8" in script
    assert len(spans) == 4
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"not all 4 at once: {spans}"
    assert len(gpus) == 4, gpus  # SLURM gave each job its own GPU


@pytest.fixture
def cluster_without_gres():
    with local_cluster(gpus=0) as state:
        yield state


@pytest.mark.timeout(
    1800
)  # ten SLURM jobs one after another, ~40-60 s each on a busy 2-core machine
def test_offline_pipeline_with_default_settings_on_a_cluster_without_gres(
    cluster_without_gres, tmp_path
):
    assert "Gres" not in (cluster_without_gres / "slurm.conf").read_text().split("NodeName=")[-1]
    home, data = tmp_path / "home", tmp_path / "data"
    env = _env(home, GENZOO_EXECUTOR="slurm", GENZOO_DATA_DIR=str(data))
    instance = _opened_by_genzoo(tmp_path, env)
    settings = {"resources": {"settings": {"config": {"samples_per_shard": 3, "resolution": 64}}}}
    key = "panthera-leo"
    partition = str(sample_partition_key(key, "000"))
    tags = {
        "dagster/partition": partition,
        "dagster/partition/species": key,
        "dagster/partition/shard": "000",
    }
    for job in slurm_jobs.OFFLINE_STAGES:
        run_tags = tags if job == "offline_per_sample" else {}
        run = _start(home, job, env, run_config=settings, tags=run_tags)
        assert run.wait(timeout=1200) == 0, job
    runs = instance.get_runs()
    assert len(runs) == 3 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    records = jobcomp(cluster_without_gres)
    done = {}
    for run in runs:
        for step_key, ids in slurm_job_ids(instance, run.run_id).items():
            done[step_key] = [records[i]["JobState"] for i in ids]
            script = next((data / "slurm" / run.run_id).glob(f"{step_key}.0.sbatch")).read_text()
            assert "--gres" not in script and "--mem=16G" in script, step_key
    assert set(done) == {"species", *slurm_jobs.PER_SAMPLE, "catalog", "dataset_shards"}
    assert all(states == ["COMPLETED"] for states in done.values()), done
    assert list((data / "shards").rglob("*.tar"))
