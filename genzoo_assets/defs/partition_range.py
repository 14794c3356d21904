"""Several species × shard partitions in one GPU step: the model loads once, every partition after
the first only generates (docs/ARCHITECTURE.md, "GPU steps").

Dagster gives a step a partition range when the run carries ``dagster/asset_partition_range_start``
and ``..._end`` tags, which a backfill of an asset with ``MODEL_BACKFILL`` sets: on the
species × shard definition it splits the requested partitions by species into runs of at most
``MODEL_PARTITIONS_PER_RUN`` consecutive shards. A run for one partition (the sensors, the
schedule, the demo, every ``genzoo`` command) is a range of one and takes the same path.

:func:`each_partition` is the loop the captions, prompts and images bodies share: it calls the
stage's per-partition function for each (species, shard), which reads, generates and writes that
partition's file atomically; it logs progress, records each partition's own metadata, and counts
the model loads (:mod:`genzoo_assets.core.residency`). When partition k fails, partitions before it
are on disk, and are recorded as materialised before the failure is raised, so the event log never
claims a partition that was not written nor misses one that was.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from genzoo_assets.core import residency
from genzoo_assets.defs.partitions import sample_partition_key, sample_partitions

# Partitions a GPU step handles per load: with FLUX + T5-XXL + CLIP-L + VAE + two ControlNets
# (~34 GB) read at 1 GB/s, ~8 s of start-up and 64 images at 5 s, one partition a load spends 12 % of
# the step on start-up and loading, eight spend 1.6 % (bench/fixed_cost.py prints the measured
# figure). Eight keeps a step to under an hour of FLUX at 5-7 s an image, so a preempted step loses
# little.
MODEL_PARTITIONS_PER_RUN = 8
PARTITION_TAG = (
    "dagster/partition"  # + /<dimension>: what Dagster tags a multi-partition event with
)
MODEL_BACKFILL = dg.BackfillPolicy.multi_run(max_partitions_per_run=MODEL_PARTITIONS_PER_RUN)


def ignore_mixed_policy_warning() -> None:
    """Silence Dagster's warning for a job that spans both policies (``generate_samples``, and
    any ad-hoc selection such as a ``genzoo`` command's): it runs one partition a run, which is
    what those requests mean; several partitions a run come from asset backfills, which group the
    assets by policy. Called by ``definitions.py`` and the run helper (``app/run.py``)."""
    warnings.filterwarnings(
        "ignore",
        message=r"Asset job \S+ materializes assets with varying BackfillPolicies",
        category=UserWarning,
    )


def step_partitions(context: dg.AssetExecutionContext) -> list[tuple[str, str]]:
    """The (species, shard) pairs of this step, sorted: one for a single-partition run, up to
    ``MODEL_PARTITIONS_PER_RUN`` for a backfill run over a range."""
    pairs = []
    for key in context.partition_keys:
        if not isinstance(key, dg.MultiPartitionKey):
            key = sample_partitions.get_partition_key_from_str(key)
        dims = key.keys_by_dimension
        pairs.append((dims["species"], dims["shard"]))
    return sorted(pairs)


@dataclass
class PartitionRun:
    """What a multi-partition step did: each partition's output, and the run-level metadata."""

    outputs: list[Any] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)


def each_partition(
    context: dg.AssetExecutionContext,
    asset: str,
    handle: Callable[[str, str], tuple[Any, Mapping[str, Any]]],
) -> PartitionRun:
    """``handle(species, shard) -> (output, metadata)`` for every partition of the step, in order.

    ``metadata`` becomes that partition's own materialisation metadata; ``PartitionRun.metadata``
    (``partitions``, ``num_partitions``, ``model_loads``: loads this step caused, 0 or 1 for a
    backend whose model is resident) goes on every partition of the step's materialisation.
    """
    pairs = step_partitions(context)
    loads_before = residency.loads
    run = PartitionRun()
    done: list[tuple[str, str, Mapping[str, Any]]] = []
    for i, (species, shard) in enumerate(pairs, start=1):
        started = time.monotonic()
        try:
            output, metadata = handle(species, shard)
        except BaseException:
            _record_written(context, asset, done, residency.loads - loads_before)
            raise
        seconds = time.monotonic() - started
        meta = {**metadata, "seconds": round(seconds, 2)}
        context.add_asset_metadata(
            meta, asset_key=asset, partition_key=sample_partition_key(species, shard)
        )
        done.append((species, shard, meta))
        run.outputs.append(output)
        if len(pairs) > 1:
            context.log.info(
                f"{asset}: partition {i}/{len(pairs)} species={species} shard={shard} written "
                f"({seconds:.1f} s)"
            )
    run.metadata = _run_metadata(pairs, residency.loads - loads_before)
    return run


def _run_metadata(pairs: list[tuple[str, str]], loads: int) -> dict:
    return {
        "partitions": dg.MetadataValue.json([f"{sp}/{sh}" for sp, sh in pairs]),
        "num_partitions": len(pairs),
        "model_loads": loads,
    }


def _record_written(
    context: dg.AssetExecutionContext,
    asset: str,
    done: list[tuple[str, str, Mapping[str, Any]]],
    loads: int,
) -> None:
    """The partitions written before a failure, as materialisations of their own (the step's
    result, which would have recorded them, is never produced)."""
    if not done:
        return
    written = _run_metadata([(sp, sh) for sp, sh, _ in done], loads)
    for species, shard, meta in done:
        key = sample_partition_key(species, shard)
        context.log_event(
            dg.AssetMaterialization(
                asset_key=asset,
                partition=key,
                metadata={**written, **meta},
                tags={f"{PARTITION_TAG}/{dim}": v for dim, v in key.keys_by_dimension.items()},
            )
        )
    context.log.warning(
        f"{asset}: {len(done)} partition(s) written before the failure are recorded as "
        "materialised; the failed partition and those after it are not"
    )
