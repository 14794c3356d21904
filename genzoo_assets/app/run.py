"""Run assets in the project's Dagster instance, as every `genzoo` command does.

``materialize`` is `dg.materialize` that frees dead runs' pool slots first, tags the run with its host
and pid, and while the run waits for a slot says what it waits for (see
:mod:`genzoo_assets.defs.pool_slots`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import dagster as dg

from genzoo_assets.defs.pool_slots import (
    Say,
    free_dead_slots,
    own_tags,
    report_waiting,
    say_on_stderr,
)

WAIT_REPORT_EVERY_S = 30.0  # how often a waiting run says again what it waits for
WATCH_POLL_S = 2.0  # how often a `genzoo` run checks its pending steps and the slots' holders


@contextlib.contextmanager
def watch(
    instance: dg.DagsterInstance,
    say: Say = say_on_stderr,
    poll_s: float = WATCH_POLL_S,
    report_every_s: float = WAIT_REPORT_EVERY_S,
) -> Iterator[None]:
    """While the block runs: free dead runs' slots, and say what this process's waiting runs wait for."""
    stop = threading.Event()
    mine = own_tags()

    def loop() -> None:
        last_report = float("-inf")
        while not stop.wait(poll_s):
            free_dead_slots(instance, say)
            if time.monotonic() - last_report >= report_every_s:
                reported = report_waiting(
                    instance, say, runs=lambda r: all(r.tags.get(k) == v for k, v in mine.items())
                )
                if any(reported.values()):
                    last_report = time.monotonic()

    thread = threading.Thread(target=loop, name="genzoo-pool-slots", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def materialize(
    assets, instance: dg.DagsterInstance, say: Say = say_on_stderr, **kwargs
) -> dg.ExecuteInProcessResult:
    """`dg.materialize` that never waits silently on a slot a dead run holds (see the module docstring)."""
    free_dead_slots(instance, say)
    with watch(instance, say):
        return dg.materialize(
            assets, instance=instance, tags={**kwargs.pop("tags", {}), **own_tags()}, **kwargs
        )
