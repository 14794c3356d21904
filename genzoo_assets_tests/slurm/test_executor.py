"""The SLURM executor against a real local cluster: same outputs as in-process, jobs in SLURM's
records, cancelled / timed-out / node-failed jobs, and the bound on jobs in flight."""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.defs.species import species
from genzoo_assets_tests.slurm import slurm_jobs
from genzoo_assets_tests.slurm.conftest import jobcomp, slurm_job_ids, step_events

pytestmark = pytest.mark.slow

SPECIES = ["panthera-leo", "dog-dachshund"]
SETTINGS = {"samples_per_shard": 3, "resolution": 64}


def _partition_tags(species_key: str, shard: str = "000") -> dict:
    return {
        "dagster/partition": str(sample_partition_key(species_key, shard)),
        "dagster/partition/species": species_key,
        "dagster/partition/shard": shard,
    }


def _run(job_fn, instance, tmp_path, run_config=None, tags=None, **execution):
    config = {
        "execution": {
            "config": {
                "log_dir": str(tmp_path / "slurm-logs"),
                "poll_interval_seconds": 1,
                **execution,
            }
        },
        **(run_config or {}),
    }
    return dg.execute_job(
        dg.reconstructable(job_fn), instance=instance, run_config=config, tags=tags or {}
    )


RUN_JOB = """
import json, sys, dagster as dg
from genzoo_assets_tests.slurm import slurm_jobs
home, job, run_config, tags = sys.argv[1:]
dg.execute_job(dg.reconstructable(getattr(slurm_jobs, job)), instance=dg.DagsterInstance.from_config(home),
               run_config=json.loads(run_config), tags=json.loads(tags))
"""


def _start_run(job_fn, instance, tmp_path, run_config=None, tags=None) -> subprocess.Popen:
    """The run's orchestrator in its own process, as the run launcher starts it (one per run)."""
    config = {
        "execution": {
            "config": {"log_dir": str(tmp_path / "slurm-logs"), "poll_interval_seconds": 1}
        },
        **(run_config or {}),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN_JOB,
            instance.root_directory,
            job_fn.__name__,
            json.dumps(config),
            json.dumps(tags or {}),
        ]
    )


def _slow_config(tmp_path, seconds: float) -> tuple[dict, Path]:
    marker = tmp_path / f"started-{time.monotonic_ns()}"
    return {"ops": {"slow": {"config": {"seconds": seconds, "marker": str(marker)}}}}, marker


def _in_background(fn) -> tuple[threading.Thread, dict]:
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", fn()))
    thread.start()
    return thread, box


def _wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _failure_message(instance, run_id: str, step_key: str) -> str:
    (failure,) = step_events(instance, run_id, step_key, "STEP_FAILURE")
    return failure.dagster_event.step_failure_data.error.message


def _tables(root: Path) -> dict[str, pd.DataFrame]:
    return {
        str(p.relative_to(root)): pd.read_parquet(p).drop(columns=["provenance"], errors="ignore")
        for stage in slurm_jobs.PER_SAMPLE
        for p in sorted((root / stage).rglob("*.parquet"))
    }


def _files(root: Path) -> dict[str, bytes]:
    """Control renders and images (the Parquet tables beside them hold run ids: compared as tables)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for sub in ("renders", "images")
        for p in sorted((root / sub).rglob("*"))
        if p.is_file() and p.suffix != ".parquet"
    }


def test_two_species_through_slurm_match_the_in_process_run(
    slurm_cluster, slurm_instance, tmp_path
):
    local, remote = tmp_path / "in_process", tmp_path / "slurm"
    per_sample = slurm_jobs.per_sample_assets()
    for root in (local, remote):
        settings = GenZooSettings(data_dir=str(root), **SETTINGS)
        assert dg.materialize(
            [species], instance=slurm_instance, resources={"settings": settings}
        ).success
    for key in SPECIES:
        assert dg.materialize(
            per_sample,
            instance=slurm_instance,
            partition_key=sample_partition_key(key, "000"),
            resources={"settings": GenZooSettings(data_dir=str(local), **SETTINGS)},
        ).success

    settings_config = {"resources": {"settings": {"config": {"data_dir": str(remote), **SETTINGS}}}}
    runs = [
        _start_run(
            slurm_jobs.per_sample_job,
            slurm_instance,
            tmp_path,
            settings_config,
            _partition_tags(key),
        )
        for key in SPECIES
    ]
    assert [run.wait(timeout=900) for run in runs] == [0, 0]
    results = slurm_instance.get_runs(dg.RunsFilter(job_name="per_sample"))
    assert len(results) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in results)

    local_tables, remote_tables = _tables(local), _tables(remote)
    assert sorted(local_tables) == sorted(remote_tables) and len(local_tables) == 2 * len(
        slurm_jobs.PER_SAMPLE
    )
    for name, table in local_tables.items():
        pd.testing.assert_frame_equal(remote_tables[name], table, obj=name)
    local_files, remote_files = _files(local), _files(remote)
    assert (
        any(n.endswith(".canny.png") for n in local_files)
        and local_files.keys() == remote_files.keys()
    )
    assert [n for n in local_files if local_files[n] != remote_files[n]] == []

    records = jobcomp(slurm_cluster)
    for result in results:
        ids = slurm_job_ids(slurm_instance, result.run_id)
        assert set(ids) == set(slurm_jobs.PER_SAMPLE)
        for step_key, (job_id,) in ids.items():
            assert records[job_id]["JobState"] == "COMPLETED", (step_key, records[job_id])
            assert records[job_id]["Partition"] == "cpu"
            script = next(
                (tmp_path / "slurm-logs" / result.run_id).glob(f"{step_key}.0.sbatch")
            ).read_text()
            # the offline backends (and renders without gpu_renders) ask for no GPU
            assert "--gres" not in script, step_key
            final = [
                e
                for e in step_events(slurm_instance, result.run_id, step_key, "ENGINE_EVENT")
                if f"SLURM job {job_id} ended COMPLETED on node" in (e.message or "")
            ]
            assert len(final) == 1, step_key
            meta = final[0].dagster_event.engine_event_data.metadata
            assert meta["SLURM node"].value == records[job_id]["NodeList"]
            assert (
                Path(meta["job stderr"].value).exists() and Path(meta["job stdout"].value).exists()
            )


def _squeue_ids(name_part: str, states: str = "RUNNING") -> list[str]:
    out = subprocess.run(
        ["squeue", "--noheader", f"--states={states}", "--format=%i|%j"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split("|")[0] for line in out.split() if name_part in line]


def test_cancelled_job_fails_its_step_with_the_state_and_a_rerun_completes(
    slurm_cluster, slurm_instance, tmp_path
):
    config, marker = _slow_config(tmp_path, 120)
    thread, box = _in_background(
        lambda: _run(slurm_jobs.slow_job, slurm_instance, tmp_path, config)
    )
    _wait_for(marker.exists, 180, "the slow step to start")
    (job_id,) = _wait_for(lambda: _squeue_ids("-slow"), 30, "the slow step's job in squeue")
    subprocess.run(["scancel", job_id], check=True)
    thread.join(timeout=120)
    result = box["result"]
    assert not result.success
    message = _failure_message(slurm_instance, result.run_id, "slow")
    assert f"SLURM job {job_id} for step slow ended CANCELLED" in message
    assert not step_events(
        slurm_instance, result.run_id, "slow", "STEP_UP_FOR_RETRY"
    )  # CANCELLED: no retry
    assert jobcomp(slurm_cluster)[job_id]["JobState"] == "CANCELLED"

    config, _ = _slow_config(tmp_path, 0)
    rerun = _run(slurm_jobs.slow_job, slurm_instance, tmp_path, config)
    assert rerun.success


def test_job_over_its_time_limit_fails_its_step_as_timeout(slurm_cluster, slurm_instance, tmp_path):
    config, _ = _slow_config(tmp_path, 300)  # the op tag limits the job to one minute
    result = _run(slurm_jobs.slow_job, slurm_instance, tmp_path, config)
    assert not result.success
    (job_id,) = slurm_job_ids(slurm_instance, result.run_id)["slow"]
    assert "ended TIMEOUT" in _failure_message(slurm_instance, result.run_id, "slow")
    assert "--time=1" in (tmp_path / "slurm-logs" / result.run_id / "slow.0.sbatch").read_text()
    assert jobcomp(slurm_cluster)[job_id]["JobState"] == "TIMEOUT"


def test_node_failure_is_retried_through_the_retry_policy(slurm_cluster, slurm_instance, tmp_path):
    config, marker = _slow_config(tmp_path, 120)  # the retry (attempt 1) sleeps 0 s
    thread, box = _in_background(
        lambda: _run(slurm_jobs.slow_job, slurm_instance, tmp_path, config)
    )
    _wait_for(marker.exists, 180, "the slow step to start")
    node = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    subprocess.run(
        ["scontrol", "update", f"nodename={node}", "state=down", "reason=test"], check=True
    )
    subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True)
    thread.join(timeout=300)
    result = box["result"]
    assert result.success
    retries = step_events(slurm_instance, result.run_id, "slow", "STEP_UP_FOR_RETRY")
    assert (
        len(retries) == 1
        and "ended NODE_FAIL" in retries[0].dagster_event.event_specific_data.error.message
    )
    first, second = slurm_job_ids(slurm_instance, result.run_id)["slow"]
    records = jobcomp(slurm_cluster)
    assert (records[first]["JobState"], records[second]["JobState"]) == ("NODE_FAIL", "COMPLETED")


def test_jobs_in_flight_are_bounded_across_runs(slurm_cluster, slurm_instance, tmp_path):
    """With max_jobs_in_flight=1 and another genzoo job running, the step waits to be submitted."""
    blocker = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--job-name=genzoo-blocker",
            "--output=/dev/null",
            "--wrap=sleep 300",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    _wait_for(lambda: _squeue_ids("genzoo-blocker"), 30, "the blocking job to run")
    config, marker = _slow_config(tmp_path, 0)
    thread, box = _in_background(
        lambda: _run(slurm_jobs.slow_job, slurm_instance, tmp_path, config, max_jobs_in_flight=1)
    )
    time.sleep(8)
    assert (
        not marker.exists() and _squeue_ids("-slow", "PENDING,RUNNING") == []
    )  # held back, not queued in SLURM
    subprocess.run(["scancel", blocker], check=True)
    thread.join(timeout=180)
    result = box["result"]
    assert result.success
    waits = [
        e
        for e in step_events(slurm_instance, result.run_id, "slow", "ENGINE_EVENT")
        if "Waiting to submit: 1 genzoo SLURM jobs in flight (max_jobs_in_flight=1)"
        in (e.message or "")
    ]
    assert len(waits) == 1
    (job_id,) = slurm_job_ids(slurm_instance, result.run_id)["slow"]
    records = jobcomp(slurm_cluster)
    assert records[job_id]["StartTime"] >= records[blocker]["EndTime"]


def test_terminating_the_run_cancels_its_jobs(slurm_cluster, slurm_instance, tmp_path):
    """Interrupting the run's process (how run launchers terminate a run) cancels its SLURM jobs."""
    config, marker = _slow_config(tmp_path, 300)
    run = _start_run(slurm_jobs.slow_job, slurm_instance, tmp_path, config)
    try:
        _wait_for(marker.exists, 180, "the slow step to start")
        (job_id,) = _wait_for(lambda: _squeue_ids("-slow"), 30, "the slow step's job in squeue")
        run.send_signal(signal.SIGINT)
        run.wait(timeout=120)
    finally:
        run.kill()
    assert (
        _wait_for(lambda: jobcomp(slurm_cluster).get(job_id), 60, "the job's completion record")[
            "JobState"
        ]
        == "CANCELLED"
    )
    (record,) = slurm_instance.get_runs()
    messages = [e.message or "" for e in slurm_instance.all_logs(record.run_id)]
    assert any(f"Cancelling SLURM job {job_id} (scancel)" in m for m in messages)
