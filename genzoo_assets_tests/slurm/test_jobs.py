"""What a step asks SLURM for, and the batch script it becomes (no cluster needed)."""

from pathlib import Path

import pytest

from genzoo_assets.slurm.jobs import FAILED_STATES, RETRY_STATES, JobRequest, batch_script


def test_request_fields_are_validated_with_the_source_named():
    with pytest.raises(ValueError, match=r"pools.gpu: unknown SLURM setting\(s\) memory"):
        JobRequest.from_mapping({"memory": "4G"}, "pools.gpu")
    with pytest.raises(ValueError, match="images: cpus=0: expected a positive integer"):
        JobRequest.from_mapping({"cpus": 0}, "images")
    with pytest.raises(ValueError, match="time=''"):
        JobRequest.from_mapping({"time": ""}, "x")
    with pytest.raises(ValueError, match="extra_args"):
        JobRequest.from_mapping({"extra_args": "--exclusive"}, "x")


def test_later_requests_win_field_by_field_and_extra_args_accumulate():
    pool = JobRequest(partition="gpu", time="4:00:00", gres="gpu:1", extra_args=("--exclusive",))
    merged = pool.merged(JobRequest(time="12:00:00", mem="64G", extra_args=("--constraint=a100",)))
    assert merged == JobRequest(
        partition="gpu",
        time="12:00:00",
        gres="gpu:1",
        mem="64G",
        extra_args=("--exclusive", "--constraint=a100"),
    )
    assert merged.sbatch_options() == [
        "--partition=gpu",
        "--time=12:00:00",
        "--mem=64G",
        "--gres=gpu:1",
        "--exclusive",
        "--constraint=a100",
    ]


def test_batch_script_quotes_the_environment_and_runs_the_command_last():
    script = batch_script(
        "genzoo-1234abcd-images",
        JobRequest(partition="gpu", gres="gpu:1"),
        Path("/l/o"),
        Path("/l/e"),
        Path("/work"),
        ["module load cuda"],
        {"ARGS": "a b'c"},
        ["/venv/bin/python", "-m", "genzoo_assets.slurm.worker"],
    )
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for option in (
        "--job-name=genzoo-1234abcd-images",
        "--output=/l/o",
        "--error=/l/e",
        "--chdir=/work",
        "--no-requeue",
        "--partition=gpu",
        "--gres=gpu:1",
    ):
        assert f"#SBATCH {option}" in lines, option
    assert lines.index("module load cuda") < lines.index("export ARGS='a b'\"'\"'c'")
    assert lines[-1] == "exec /venv/bin/python -m genzoo_assets.slurm.worker"


def test_failed_and_retried_states_are_disjoint_and_cover_the_issue():
    assert {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED"} <= FAILED_STATES
    assert RETRY_STATES == {"PREEMPTED", "NODE_FAIL"} and not FAILED_STATES & RETRY_STATES
