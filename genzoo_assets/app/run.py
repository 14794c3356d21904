"""Run assets in the project's Dagster instance, as every `genzoo` command does.

``run_assets`` is the one way the CLI, the species commands and the demo run assets: the settings
resource they built and :func:`materialize`. ``materialize`` is `dg.materialize` that frees dead
runs' pool slots first, tags the run with its host and pid, and while the run waits for a slot says
what it waits for (see :mod:`genzoo_assets.defs.pool_slots`).

It is quiet: Dagster's console logger is off (a failed step would print its traceback, a hundred
lines, before the command's one ``genzoo: error:`` line), and what a user needs of the run's log
is read back from the instance's event log while it runs: the assets' own warnings (``say``), their
info messages such as training progress (``progress``), and, when nothing was said for
``heartbeat_s``, a line naming the steps still running. ``GENZOO_DEBUG=1`` turns the console
logger back on.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Iterator

import dagster as dg
from dagster._core.errors import DagsterExecutionInterruptedError, DagsterUnknownPartitionError

from genzoo_assets.app.signals import Stopped, check_stopped
from genzoo_assets.core.errors import InputError, debug, one_line
from genzoo_assets.defs.partition_range import ignore_mixed_policy_warning
from genzoo_assets.defs.pool_slots import (
    HOST_TAG,
    PID_TAG,
    Say,
    free_dead_slots,
    own_tags,
    report_waiting,
    say_on_stderr,
)
from genzoo_assets.defs.resources import INTERRUPTED

ignore_mixed_policy_warning()  # a command's selection spans both backfill policies

WAIT_REPORT_EVERY_S = 30.0  # how often a waiting run says again what it waits for
WATCH_POLL_S = 2.0  # how often a `genzoo` run checks its pending steps and the slots' holders


HEARTBEAT_S = 30.0  # a run that said nothing for this long says which steps are still running
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
LOUD = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


class RunLog:
    """Forwards the user log messages of this process's runs, read from the instance's event log.

    Warnings and errors the assets log go to ``say``, their info messages to ``progress`` (dropped
    when it is None); Dagster's own events (step started, failed, ...) are not forwarded.
    """

    def __init__(self, instance: dg.DagsterInstance, say: Say, progress: Say | None) -> None:
        self.instance, self.say, self.progress = instance, say, progress
        self.cursors: dict[str, str | None] = {}
        self.last_said = time.monotonic()
        self.running: set[str] = set()  # step keys started and not finished

    def _runs(self) -> list[str]:
        runs = self.instance.get_runs(
            filters=dg.RunsFilter(tags=own_tags(), statuses=[dg.DagsterRunStatus.STARTED])
        )
        return [r.run_id for r in runs]

    def poll(self) -> None:
        for run_id in {*self._runs(), *self.cursors}:
            connection = self.instance.get_records_for_run(run_id, cursor=self.cursors.get(run_id))
            self.cursors[run_id] = connection.cursor
            for record in connection.records:
                self._forward(record.event_log_entry)

    def _forward(self, entry) -> None:
        event = entry.dagster_event
        if event is not None:
            if event.is_step_start:
                self.running.add(event.step_key)
            elif event.is_step_success or event.is_step_failure or event.is_step_skipped:
                self.running.discard(event.step_key)
            return
        if entry.level >= logging.WARNING:
            self._tell(self.say, entry)
        elif entry.level >= logging.INFO and self.progress is not None:
            self._tell(self.progress, entry)

    def _tell(self, to: Say, entry) -> None:
        to(f"{entry.step_key}: {entry.user_message}" if entry.step_key else entry.user_message)
        self.last_said = time.monotonic()

    def heartbeat(self, started: float, every_s: float) -> None:
        """Say which steps are running when nothing was said for ``every_s``."""
        now = time.monotonic()
        if now - self.last_said >= every_s:
            steps = ", ".join(sorted(self.running)) or "the run"
            self.say(f"{steps}: still running ({now - started:.0f} s)")
            self.last_said = now


@contextlib.contextmanager
def watch(
    instance: dg.DagsterInstance,
    say: Say = say_on_stderr,
    poll_s: float = WATCH_POLL_S,
    report_every_s: float = WAIT_REPORT_EVERY_S,
    progress: Say | None = None,
    heartbeat_s: float | None = HEARTBEAT_S,
) -> Iterator[None]:
    """While the block runs: free dead runs' slots, say what this process's waiting runs wait for,
    forward their log messages (:class:`RunLog`) and, every ``heartbeat_s`` without a word, say
    which steps are still running (None: never)."""
    stop = threading.Event()
    mine = own_tags()
    log = RunLog(instance, say, progress)
    started = time.monotonic()

    def loop() -> None:
        last_report = float("-inf")
        while not stop.wait(poll_s):
            free_dead_slots(instance, say)
            log.poll()
            if time.monotonic() - last_report >= report_every_s:
                reported = report_waiting(
                    instance, say, runs=lambda r: all(r.tags.get(k) == v for k, v in mine.items())
                )
                if any(reported.values()):
                    last_report = log.last_said = time.monotonic()
            if heartbeat_s is not None:
                log.heartbeat(started, heartbeat_s)

    thread = threading.Thread(target=loop, name="genzoo-pool-slots", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        log.poll()  # what the run logged after the last poll


def materialize(
    assets,
    instance: dg.DagsterInstance,
    say: Say = say_on_stderr,
    progress: Say | None = None,
    heartbeat_s: float | None = HEARTBEAT_S,
    **kwargs,
) -> dg.ExecuteInProcessResult:
    """`dg.materialize`, quiet, that never waits silently (see the module docstring).

    ``run_config``'s own ``loggers`` are replaced: the console logger is off, or at DEBUG with
    ``GENZOO_DEBUG``.
    """
    run_config = {**(kwargs.pop("run_config", None) or {}), **(LOUD if debug() else QUIET)}
    free_dead_slots(instance, say)
    since = time.time()
    try:
        with watch(instance, say, progress=progress, heartbeat_s=heartbeat_s):
            result = dg.materialize(
                assets,
                instance=instance,
                run_config=run_config,
                tags={**kwargs.pop("tags", {}), **own_tags()},
                **kwargs,
            )
        check_stopped()
        return result
    except (Stopped, KeyboardInterrupt, DagsterExecutionInterruptedError) as exc:
        cancel_runs(instance, since)
        if isinstance(exc, Stopped):
            raise
        raise Stopped() from exc
    except dg.Failure as exc:
        if exc.description != INTERRUPTED:
            raise
        cancel_runs(instance, since)
        raise Stopped() from exc
    except DagsterUnknownPartitionError as exc:  # a species or shard the user named
        raise InputError(one_line(exc)) from exc


def cancel_runs(
    instance: dg.DagsterInstance, since: float, pids: list[int] | None = None
) -> list[str]:
    """Mark this host's runs created after ``since`` by ``pids`` (default: this process) that did
    not succeed as cancelled, and free their pool slots; their run ids."""
    host = own_tags()[HOST_TAG]
    mine = {str(p) for p in pids} if pids is not None else {own_tags()[PID_TAG]}
    cancelled = []
    for run in instance.get_runs(
        filters=dg.RunsFilter(created_after=datetime.datetime.fromtimestamp(since, datetime.UTC))
    ):
        if run.tags.get(HOST_TAG) != host or run.tags.get(PID_TAG) not in mine:
            continue
        if run.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.CANCELED):
            continue
        instance.report_run_canceled(run, "Cancelled by genzoo: the command was stopped.")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        cancelled.append(run.run_id)
    return cancelled


def run_assets(
    assets,
    settings,
    instance: dg.DagsterInstance | None = None,
    partition_key: str | None = None,
    run_config: dict | None = None,
    resources: dict | None = None,
    **watching,
) -> dg.ExecuteInProcessResult:
    """Materialise ``assets`` with the ``settings`` resource (and any other ``resources``) in
    ``instance``, the project's own (``.dagster_home``) when None; raises on a failed step.
    ``watching`` (``say``, ``progress``, ``heartbeat_s``) goes to :func:`materialize`, which also
    sets Dagster's console logger."""
    from genzoo_assets.app.instance import project_instance

    bound = {"settings": settings, **(resources or {})}
    with contextlib.ExitStack() as stack:
        if instance is None:
            instance = stack.enter_context(project_instance())
        return materialize(
            assets,
            instance,
            resources=bound,
            partition_key=partition_key,
            run_config=run_config or {},
            raise_on_error=True,
            **watching,
        )
