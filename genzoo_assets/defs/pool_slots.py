"""Housekeeping for the web UI's runs: free pool slots held by dead runs, say what waiting runs wait for.

`dg dev`'s daemon evaluates this sensor; the work is `genzoo_assets.pool_slots` (the `genzoo`
commands do the same before and during their own runs).
"""

import dagster as dg

from genzoo_assets import pool_slots


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_pool_slots(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Frees the slots of runs that finished or whose worker process is gone; requests no runs."""
    lines: list[str] = []
    pool_slots.free_dead_slots(context.instance, say=lines.append)
    waiting = pool_slots.report_waiting(context.instance)
    lines += [f"run {run_id} {line}" for run_id, run_lines in waiting.items() for line in run_lines]
    for line in lines:
        context.log.info(line)
    return dg.SkipReason("; ".join(lines) or "no pool slot is held by a dead run")
