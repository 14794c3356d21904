"""Incremental regeneration: new species get their partitions, a schedule fills what is missing,
and (opt-in) the adaptive loop generates each planned round after a benchmark.

Both request only species × shard partitions whose final per-sample asset (`images`) has never
been materialised, up to each species' planned shard count. The catalog and the shard export then
follow by declarative automation (eager conditions on those assets).
"""

from __future__ import annotations

import dagster as dg

from genzoo_assets.core import layout
from genzoo_assets.core.dataset.splits import DEFAULT_HELDOUT_FAMILIES
from genzoo_assets.core.dataset.webdataset import heldout_split
from genzoo_assets.core.errors import MissingInputError
from genzoo_assets.core.planning.plan import newest_round
from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs import planning
from genzoo_assets.defs.partitions import (
    NUM_SHARDS,
    SHARD_KEYS,
    SPECIES_PARTITIONS_NAME,
    sample_partition_key,
)
from genzoo_assets.defs.resources import GenZooSettings

PER_SAMPLE_ASSETS = list(layout.SAMPLE_STAGES)
MAX_RUNS_PER_TICK = 64

generate_samples = dg.define_asset_job(
    "generate_samples",
    selection=dg.AssetSelection.assets(*PER_SAMPLE_ASSETS),
    description="All per-sample stages for one species × shard partition.",
)


def missing_partitions(
    instance: dg.DagsterInstance, table, species_keys=None
) -> list[dg.MultiPartitionKey]:
    """Planned species × shard keys whose `images` partition has never been materialised."""
    done = {str(k) for k in instance.get_materialized_partitions(dg.AssetKey("images"))}
    keys = []
    for row in table.itertuples(index=False):
        if species_keys is not None and row.key not in species_keys:
            continue
        for shard in SHARD_KEYS[: min(int(row.planned_shards), NUM_SHARDS)]:
            key = sample_partition_key(row.key, shard)
            if str(key) not in done:
                keys.append(key)
    return keys


def _run_requests(keys, keyed: bool = False) -> list[dg.RunRequest]:
    """At most MAX_RUNS_PER_TICK requests; `keyed` gives each a run key so the sensor daemon skips
    a partition it already requested when a capped-off species is evaluated again."""
    return [
        dg.RunRequest(partition_key=k, run_key=str(k) if keyed else None)
        for k in keys[:MAX_RUNS_PER_TICK]
    ]


@dg.sensor(
    job=generate_samples, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def new_species_sensor(
    context: dg.SensorEvaluationContext, settings: GenZooSettings
) -> dg.SensorResult | dg.SkipReason:
    """Species that joined the table since the last tick (the `species` asset registered them) → generate them."""
    root = settings.root()
    if not frame.species_table_path(root).exists():
        return dg.SkipReason("no species table yet: materialise the `species` asset")
    table = frame.read_species_table(root)
    registered = set(context.instance.get_dynamic_partitions(SPECIES_PARTITIONS_NAME))
    table = table[
        table["key"].isin(registered)
    ]  # the asset registers before it writes; a hand-edited table waits
    seen = set(filter(None, (context.cursor or "").split(",")))
    fresh = set(table["key"]) - seen if context.cursor is not None else set()
    keys = missing_partitions(context.instance, table, species_keys=fresh) if fresh else []
    capped_off = {
        k.keys_by_dimension["species"] for k in keys[MAX_RUNS_PER_TICK:]
    }  # not seen yet: next tick
    return dg.SensorResult(
        run_requests=_run_requests(keys, keyed=True),
        cursor=",".join(sorted(set(table["key"]) - capped_off)),
    )


@dg.schedule(
    job=generate_samples, cron_schedule="0 3 * * *", default_status=dg.DefaultScheduleStatus.STOPPED
)
def incremental_regeneration(context: dg.ScheduleEvaluationContext, settings: GenZooSettings):
    """Nightly: every registered species' missing partitions (reads the instance's species keys;
    Dagster's partitioned-schedule helper rejects dynamic partitions)."""
    root = settings.root()
    if not frame.species_table_path(root).exists():
        return dg.SkipReason("no species table yet: materialise the `species` asset")
    registered = set(context.instance.get_dynamic_partitions(SPECIES_PARTITIONS_NAME))
    keys = missing_partitions(
        context.instance, frame.read_species_table(root), species_keys=registered
    )
    return _run_requests(keys) or dg.SkipReason("every planned partition is materialised")


ROUND_TAG, PLAN_TAG = "genzoo/round", "genzoo/plan_id"


def _latest_timestamp(instance: dg.DagsterInstance, asset: str) -> float | None:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return None if event is None else float(event.timestamp)


def heldout_species(root) -> set[str]:
    """The species of the held-out test split: those the current export holds out, and every
    species of its held-out families in the species table (a species added since the export
    belongs to the test set too). Before any export, the export's default families."""
    try:
        families, species = heldout_split(layout.shards_dir(root))
    except MissingInputError:
        families, species = DEFAULT_HELDOUT_FAMILIES, ()
    heldout = set(species)
    if frame.species_table_path(root).exists():
        table = frame.read_species_table(root)
        heldout |= set(table.loc[table["family"].isin(families), "key"])
    return heldout


def planned_round_requests(root, cursor: int, heldout_species: set[str]) -> tuple[list, int]:
    """The newest planned round's partitions as run requests (tagged with round and plan), when it
    is newer than ``cursor``; a held-out species is never requested, whatever the ledger says."""
    newest = newest_round(root)
    if newest is None or newest[0] <= cursor:
        return [], cursor
    round_no, plan_id, partitions = newest
    tags = {ROUND_TAG: str(round_no), PLAN_TAG: plan_id}
    requests = [
        dg.RunRequest(
            job_name=generate_samples.name,
            partition_key=sample_partition_key(species, shard),
            run_key=f"round-{round_no}-{species}-{shard}",
            tags=tags,
        )
        for species, shard in partitions
        if species not in heldout_species
    ]
    return requests, round_no


@dg.sensor(
    jobs=[generate_samples, planning.plan_next_round],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def adaptive_rounds_sensor(
    context: dg.SensorEvaluationContext, settings: GenZooSettings
) -> dg.SensorResult | dg.SkipReason:
    """The closed loop (opt-in): `results` newer than the last `sampling_plan` (a benchmark ran) →
    plan the next round; a round newer than the last launched → generate its partitions, each run
    tagged `genzoo/round` and `genzoo/plan_id`. Held-out (test) species are never launched."""
    root = settings.root()
    requests: list[dg.RunRequest] = []
    scored = _latest_timestamp(context.instance, "results")
    planned = _latest_timestamp(context.instance, "sampling_plan")
    if scored is not None and (planned is None or scored > planned):
        requests.append(
            dg.RunRequest(job_name=planning.plan_next_round.name, run_key=f"plan-{scored}")
        )
    launched, cursor = planned_round_requests(root, int(context.cursor or 0), heldout_species(root))
    requests += launched
    if not requests:
        return dg.SkipReason("no new benchmark results and no new planned round")
    return dg.SensorResult(run_requests=requests, cursor=str(cursor))
