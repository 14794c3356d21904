"""Pool slots held by dead runs: find them, free them through Dagster's API, and say so.

A step in a pool (``gpu``, ``duckdb``) claims a slot in the instance's storage and frees it when it
ends. A run killed with SIGKILL never frees it, and its run stays STARTED, so with the pool's limit
of 1 every later run waits for ever. Dagster's run monitoring (``run_monitoring`` in
``dagster.yaml``, a daemon feature: `dg dev` and the Kubernetes daemon run it, `dg.materialize`
does not) marks such a run failed only when its launcher can check the worker (K8sRunLauncher
can, the local DefaultRunLauncher cannot), and frees a finished run's slots after
``free_slots_after_run_end_seconds``. This module covers the rest, for every `genzoo` command and
the `dead_run_pool_slots` sensor:

- a slot whose run has finished (or no longer exists) is freed;
- a slot whose run is still marked in progress is freed, and the run marked failed, only on
  proof that nothing of the run still runs: its worker (the process that started it) is named by
  the ``genzoo/worker`` tag that `genzoo` runs carry, ``<boot id>/<PID namespace>/<pid>/<start
  ticks>`` (:func:`~genzoo_assets.core.processes.process_identity`), and is judged only from the
  same boot and PID namespace, where a pid with another start time, or a zombie, is gone; then
  every step it started and that has not ended (STEP_START without an end event) must be gone too
  (its pid, in the worker's namespace, with a start no later than the step's): a step process
  orphaned by a killed worker keeps its slot until it ends.
- anything else is left alone and said so where a run waits for the slot: a run from another
  host, container or PID namespace (Dagster's run monitoring judges it), and a run without the
  tag (launched from the web UI), whose worker cannot be identified from here. Steps of the SLURM
  and Kubernetes executors run on other machines: their runs are judged by the worker alone.

``genzoo_assets.app.run.materialize`` is `dg.materialize` for the `genzoo` commands: it frees dead slots first, tags
the run with its host and pid, and while the run waits for a slot says what it waits for (which
pool, held by which run), in the console and in the waiting run's event log.

The ``dead_run_pool_slots`` sensor (evaluated by `dg dev`'s daemon) runs the same housekeeping for
the web UI's runs.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from collections.abc import Callable

import dagster as dg

from genzoo_assets.core.processes import identity_alive, process_alive, process_identity

HOST_TAG = "genzoo/host"
PID_TAG = "genzoo/pid"
WORKER_TAG = "genzoo/worker"  # process_identity() of the run's worker
_STARTS = (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_RESTARTED)
_ENDS = (
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_UP_FOR_RETRY,
    dg.DagsterEventType.STEP_SKIPPED,
)

Say = Callable[[str], None]


def say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # stdout stays the command's output (csv, json)


@dataclasses.dataclass(frozen=True)
class SlotUse:
    """One step's use of a pool: holding a slot (``claimed``) or queued for one."""

    pool: str
    run_id: str
    step_key: str
    claimed: bool


def slot_uses(instance: dg.DagsterInstance) -> list[SlotUse]:
    """Every claimed slot and every unassigned pending claim, over every pool of the instance."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    uses = []
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        uses += [SlotUse(pool, s.run_id, s.step_key, True) for s in info.claimed_slots]
        uses += [
            SlotUse(pool, p.run_id, p.step_key, False)
            for p in info.pending_steps
            if p.assigned_timestamp is None
        ]
    return uses


def _worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[str | None, int | None]:
    """(host, pid) of the process that started ``run``, as far as known (for display only)."""
    pid = run.tags.get(PID_TAG)
    if pid is None:
        starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)
        pid = starts[0].dagster_event.pid if starts and starts[0].dagster_event else None
    return run.tags.get(HOST_TAG), int(pid) if pid is not None else None


def _running_steps(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, int, float]]:
    """(step key, pid, start timestamp) of every step of ``run_id`` that started and has not ended."""
    running: dict[str, tuple[int, float] | None] = {}
    for entry in instance.all_logs(run_id, of_type={*_STARTS, *_ENDS}):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        started = event.event_type in _STARTS and event.pid is not None
        running[event.step_key] = (event.pid, entry.timestamp) if started else None
    return [(step, *found) for step, found in running.items() if found is not None]


def unjudged_reason(run: dg.DagsterRun) -> str | None:
    """Why ``run``'s liveness cannot be judged from this process, None when it can."""
    identity = run.tags.get(WORKER_TAG)
    if identity is None:
        return (
            f"no {WORKER_TAG} tag (not started by `genzoo`): its worker cannot be identified here"
        )
    if identity_alive(identity) is None:
        return "its worker ran on another host, boot or PID namespace: not judged here"
    return None


def dead_reason(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """Why ``run_id`` can no longer use a slot, or None while it may still be running (including
    whenever that cannot be proven: :func:`unjudged_reason`)."""
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return "the run no longer exists"
    run = record.dagster_run
    if run.is_finished:
        return f"the run is {run.status.value}"
    identity = run.tags.get(WORKER_TAG)
    if identity is None or identity_alive(identity) is not False:
        return None
    for _step, pid, started in _running_steps(instance, run_id):
        if process_alive(pid, since=started):
            return None  # an orphaned step process still holds the device
    pid = identity.split("/")[2]
    host = run.tags.get(HOST_TAG, "this host")
    return f"its worker process {pid} on {host} is gone, and so are its steps' processes"


def free_dead_slots(instance: dg.DagsterInstance, say: Say = say_on_stderr) -> list[SlotUse]:
    """Free every slot (and pending claim) of a dead run; one line each through ``say``."""
    freed, reasons = [], {}
    for use in slot_uses(instance):
        if use.run_id not in reasons:
            reasons[use.run_id] = dead_reason(instance, use.run_id)
        if reasons[use.run_id] is not None:
            freed.append(use)
    for run_id in dict.fromkeys(u.run_id for u in freed):
        run = instance.get_run_by_id(run_id)
        reason = reasons[run_id]
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, f"Marked failed by genzoo: {reason}.")
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        held = [
            f"'{u.pool}' (step {u.step_key})" for u in freed if u.run_id == run_id and u.claimed
        ]
        what = f"pool slot {', '.join(held)} held by" if held else "the queued pool claims of"
        say(f"genzoo: freed {what} run {run_id}: {reason}")
    return freed


def waiting_lines(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """What each step of ``run_id`` that waits for a pool slot waits for."""
    uses = slot_uses(instance)
    lines = []
    for wait in (u for u in uses if u.run_id == run_id and not u.claimed):
        holders = [u for u in uses if u.pool == wait.pool and u.claimed]
        limit = instance.event_log_storage.get_concurrency_info(wait.pool).limit
        held = (
            "; ".join(_describe_holder(instance, u) for u in holders)
            or "no run (the slot is being assigned)"
        )
        lines.append(
            f"step {wait.step_key} waits for a '{wait.pool}' pool slot (limit {limit}), held by {held}"
        )
    return lines


def _describe_holder(instance: dg.DagsterInstance, use: SlotUse) -> str:
    run = instance.get_run_by_id(use.run_id)
    status = run.status.value if run else "missing"
    host, pid = _worker(instance, run) if run else (None, None)
    where = f", worker pid {pid} on {host}" if pid is not None and host else ""
    unjudged = unjudged_reason(run) if run is not None and not run.is_finished else None
    note = f"; left alone: {unjudged}" if unjudged else ""
    return f"run {use.run_id} (step {use.step_key}, {status}{where}{note})"


def report_waiting(
    instance: dg.DagsterInstance,
    say: Say | None = None,
    runs: Callable[[dg.DagsterRun], bool] = lambda run: True,
) -> dict[str, list[str]]:
    """Write what every waiting run (of those ``runs`` selects) waits for into its event log."""
    reports = {}
    for run_id in dict.fromkeys(u.run_id for u in slot_uses(instance) if not u.claimed):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished or not runs(run):
            continue
        reports[run_id] = waiting_lines(instance, run_id)
        for line in reports[run_id]:
            instance.report_engine_event(line, run)
            if say:
                say(f"genzoo: run {run_id} {line}")
    return reports


def own_tags() -> dict[str, str]:
    """The tags that let a later process judge this run's worker (this process)."""
    identity = process_identity()
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    return {**tags, WORKER_TAG: identity} if identity else tags


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_pool_slots(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Frees the slots of runs that finished or whose worker process is gone; requests no runs."""
    lines: list[str] = []
    free_dead_slots(context.instance, say=lines.append)
    waiting = report_waiting(context.instance)
    lines += [f"run {run_id} {line}" for run_id, run_lines in waiting.items() for line in run_lines]
    for line in lines:
        context.log.info(line)
    return dg.SkipReason("; ".join(lines) or "no pool slot is held by a dead run")
