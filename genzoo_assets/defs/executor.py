"""Which executor runs a run's steps: one pod per step on Kubernetes, local processes otherwise.

``GENZOO_EXECUTOR=k8s`` selects ``k8s_job_executor``: every step is its own Kubernetes Job, and the
GPU stages' ``dagster-k8s/config`` op tags (``GPU_OP_TAGS``) make their pods request one
``nvidia.com/gpu``, so the scheduler puts them on GPU nodes. Otherwise steps run as local
processes, at most ``GENZOO_MAX_CONCURRENT`` (default: the CPU count) at a time; the instance's
``gpu`` pool still lets only as many GPU steps run as there are GPUs. ``in_process`` runs every
step in the run's own process: no per-step interpreter start (~10 s each on a busy 2-core
machine), for small partitions and debugging.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

EXECUTOR_ENV = "GENZOO_EXECUTOR"
MAX_CONCURRENT_ENV = "GENZOO_MAX_CONCURRENT"
EXECUTOR_KINDS = ("multiprocess", "k8s", "in_process")


def max_concurrent(env: Mapping[str, str] = os.environ) -> int:
    raw = env.get(MAX_CONCURRENT_ENV) or str(os.cpu_count() or 1)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_CONCURRENT_ENV}={raw!r}: expected a positive integer (steps run at once)")
    return value


def select_executor(env: Mapping[str, str] = os.environ) -> dg.ExecutorDefinition:
    """The executor named by ``GENZOO_EXECUTOR`` (``multiprocess`` when unset)."""
    kind = (env.get(EXECUTOR_ENV) or "multiprocess").strip().lower()
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "multiprocess":
        return dg.multiprocess_executor.configured(
            {"max_concurrent": max_concurrent(env)}, name="genzoo_multiprocess"
        )
    raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected one of {', '.join(EXECUTOR_KINDS)}")


@dg.definitions
def executor() -> dg.Definitions:
    return dg.Definitions(executor=select_executor())
