"""A real single-node SLURM cluster for the session (``deploy/slurm/local-cluster.sh``), and the
helpers that run test jobs on it."""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "deploy" / "slurm" / "local-cluster.sh"


def _free_port_pair() -> int:
    """A port p with p and p+1 free (slurmctld, slurmd)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports for slurmctld and slurmd")


@contextlib.contextmanager
def local_cluster(gpus: int, cpus: int = 32, mem_mb: int = 262144):
    """munged, slurmctld and slurmd for the block; yields the state directory (not under pytest's
    0700 temporary root: munged runs as user munge and must reach its key and socket). The node
    advertises ``cpus`` and ``mem_mb`` (more than this machine has, so the executor's default
    requests schedule) and ``gpus`` fake gres (0: no gres configured at all)."""
    if os.geteuid() != 0:
        pytest.fail("the SLURM tests start munged and slurmd, which needs root")
    base = Path(tempfile.mkdtemp(prefix="genzoo-slurm-"))
    base.chmod(0o755)
    state = base / "cluster"
    env = {
        **os.environ,
        "GENZOO_SLURM_DIR": str(state),
        "GENZOO_SLURM_PORT": str(_free_port_pair()),
        "GENZOO_SLURM_GPUS": str(gpus),
        "GENZOO_SLURM_CPUS": str(cpus),
        "GENZOO_SLURM_MEM": str(mem_mb),
    }
    started = subprocess.run(
        [str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120
    )
    if started.returncode != 0:
        pytest.fail(
            f"local-cluster.sh start failed: {started.stderr.strip() or started.stdout.strip()}"
        )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(state / "slurm.conf"))
        mp.setenv("PYOPENGL_PLATFORM", "egl")
        mp.setenv("HF_HUB_OFFLINE", "1")
        try:
            yield state
        finally:
            subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_cluster():
    """A cluster with 4 fake GPUs (gres) for the session."""
    with local_cluster(gpus=4) as state:
        yield state


@pytest.fixture
def slurm_instance(tmp_path):
    """A persistent instance (SQLite under tmp_path) that every SLURM job opens through its ref."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance


def jobcomp(state: Path) -> dict[str, dict[str, str]]:
    """SLURM's own record of finished jobs: jobcomp/filetxt, one ``Key=Value ...`` line per job."""
    path = state / "jobcomp.log"
    records = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        records[fields["JobId"]] = fields
    return records


def step_events(instance: dg.DagsterInstance, run_id: str, step_key: str, kind: str) -> list:
    return [
        e
        for e in instance.all_logs(run_id)
        if e.step_key == step_key and e.dagster_event and e.dagster_event.event_type_value == kind
    ]


def slurm_job_ids(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """Step key → the SLURM job ids its STEP_WORKER_STARTING events name, in order."""
    out: dict[str, list[str]] = {}
    for e in instance.all_logs(run_id):
        if e.dagster_event and e.dagster_event.event_type_value == "STEP_WORKER_STARTING":
            meta = e.dagster_event.engine_event_data.metadata
            out.setdefault(e.step_key, []).append(meta["SLURM job id"].value)
    return out
