"""Run assets in the project's Dagster instance, as every `genzoo` command does.

``run_assets`` is the one way the CLI, the species commands and the demo run assets: the settings
resource they built, Dagster's console logger at WARNING (the commands print their own progress),
and :func:`materialize`. ``materialize`` is `dg.materialize` that frees dead runs' pool slots
first, tags the run with its host and pid, and while the run waits for a slot says what it waits for (see
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


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_assets(
    assets,
    settings,
    instance: dg.DagsterInstance | None = None,
    partition_key: str | None = None,
    run_config: dict | None = None,
    resources: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialise ``assets`` with the ``settings`` resource (and any other ``resources``) in
    ``instance``, the project's own (``.dagster_home``) when None; raises on a failed step."""
    from genzoo_assets.app.instance import project_instance

    config = {**QUIET, **(run_config or {})}
    bound = {"settings": settings, **(resources or {})}
    with contextlib.ExitStack() as stack:
        if instance is None:
            instance = stack.enter_context(project_instance())
        return materialize(
            assets,
            instance,
            resources=bound,
            partition_key=partition_key,
            run_config=config,
            raise_on_error=True,
        )
