"""Pool slots held by dead runs are freed (and their runs marked failed); live holders are kept;
a waiting run says which pool and which run it waits for."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from genzoo_assets.core.processes import process_identity
from genzoo_assets.defs import pool_slots
from genzoo_assets.defs.pool_slots import dead_run_pool_slots

POOL = "gpu"


@pytest.fixture
def instance():
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as inst:
        inst.event_log_storage.set_concurrency_slots(POOL, 1)
        yield inst


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _identity(pid: int, boot: str | None = None, namespace: str | None = None) -> str:
    """``pid``'s worker identity as `genzoo` tags it; a dead pid gets any start time."""
    here_boot, here_ns, _, _ = process_identity().split("/")
    live = process_identity(pid)
    ticks = live.split("/")[3] if live else "1"
    return f"{boot or here_boot}/{namespace or here_ns}/{pid}/{ticks}"


def _run(
    instance,
    pid: int,
    host: str | None = None,
    status=dg.DagsterRunStatus.STARTED,
    identity: str | None = None,
) -> str:
    tags = {
        pool_slots.HOST_TAG: host or socket.gethostname(),
        pool_slots.PID_TAG: str(pid),
        pool_slots.WORKER_TAG: identity or _identity(pid, boot="another-boot" if host else None),
    }
    return create_run_for_test(instance, status=status, tags=tags).run_id


def _claim(instance, run_id: str, step: str) -> bool:
    return instance.event_log_storage.claim_concurrency_slot(POOL, run_id, step).is_claimed


def _holders(instance) -> set[str]:
    return {s.run_id for s in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def test_a_slot_whose_worker_process_is_gone_is_freed_and_its_run_marked_failed(instance):
    dead = _run(instance, _dead_pid())
    assert _claim(instance, dead, "control_renders")
    said = []
    freed = pool_slots.free_dead_slots(instance, say=said.append)
    assert [(u.pool, u.run_id, u.step_key) for u in freed] == [(POOL, dead, "control_renders")]
    assert _holders(instance) == set()
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert len(said) == 1 and said[0].startswith(
        "genzoo: freed pool slot 'gpu' (step control_renders)"
    )
    assert dead in said[0] and "is gone" in said[0]


def test_a_finished_run_holding_a_slot_is_freed(instance):
    done = _run(instance, os.getpid(), status=dg.DagsterRunStatus.CANCELED)
    assert _claim(instance, done, "images")
    said = []
    pool_slots.free_dead_slots(instance, say=said.append)
    assert _holders(instance) == set()
    assert "the run is CANCELED" in said[0]


@pytest.mark.parametrize("holder", ["live-process", "other-host"])
def test_a_live_or_remote_holder_keeps_its_slot_and_the_waiting_run_says_who_holds_it(
    instance, holder
):
    pid, host = (os.getpid(), None) if holder == "live-process" else (_dead_pid(), "another-node")
    live = _run(instance, pid, host)
    assert _claim(instance, live, "control_renders")
    waiting = _run(instance, os.getpid())
    assert not _claim(instance, waiting, "images")  # queued behind the holder (limit 1)
    said = []
    assert pool_slots.free_dead_slots(instance, say=said.append) == [] and said == []
    assert _holders(instance) == {live}

    reports = pool_slots.report_waiting(instance, say=said.append)
    assert list(reports) == [waiting]
    line = reports[waiting][0]
    assert line.startswith("step images waits for a 'gpu' pool slot (limit 1), held by run " + live)
    assert "step control_renders, STARTED" in line and f"worker pid {pid}" in line
    assert said == [f"genzoo: run {waiting} {line}"]
    logged = [
        e.message for e in instance.all_logs(waiting, of_type=dg.DagsterEventType.ENGINE_EVENT)
    ]
    assert line in logged  # visible in the waiting run's event log (the web UI's run page)


def test_the_sensor_frees_dead_slots_and_requests_no_runs(instance):
    dead = _run(instance, _dead_pid())
    assert _claim(instance, dead, "captions")
    result = dead_run_pool_slots(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason)
    assert dead in result.skip_message and "freed pool slot 'gpu'" in result.skip_message
    assert _holders(instance) == set()
    assert (
        dead_run_pool_slots(dg.build_sensor_context(instance=instance)).skip_message
        == "no pool slot is held by a dead run"
    )
