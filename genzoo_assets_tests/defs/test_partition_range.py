"""Several partitions in one GPU step (``defs/partition_range.py``), through a real Dagster instance.

A run over a range of shards writes each partition exactly as a run of one does, loads a
model-backed backend once, records each partition's own metadata, and, when partition k fails,
keeps partitions before k written and materialised. A backfill of the GPU assets asks for runs of
at most ``MODEL_PARTITIONS_PER_RUN`` shards of one species; the CPU stages stay one a run.
"""

import json
import shutil

import dagster as dg
import pandas as pd
import pytest
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from genzoo_assets.core import residency
from genzoo_assets.core.errors import InputError
from genzoo_assets.defs import text as text_defs
from genzoo_assets.defs.images import images
from genzoo_assets.defs.partition_range import MODEL_BACKFILL, MODEL_PARTITIONS_PER_RUN
from genzoo_assets.defs.partitions import SPECIES_PARTITIONS_NAME, sample_partition_key
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species
from genzoo_assets.defs.text import captions, prompts
from genzoo_assets_tests.core.text.tiny import save_tiny_qwen2

SPECIES = "panthera-leo"
SHARDS = ("000", "001")
GPU_ASSETS = [captions, prompts, images]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """species, then shards 000 and 001 up to the control renders, in one Dagster instance."""
    settings = GenZooSettings(
        data_dir=str(tmp_path_factory.mktemp("data")),
        samples_per_shard=2,
        resolution=64,
        device="cpu",
    )
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [species], instance=instance, resources={"settings": settings}
        ).success
        for shard in SHARDS:
            assert dg.materialize(
                [shape_params, pose_params, control_renders],
                instance=instance,
                resources={"settings": settings},
                partition_key=sample_partition_key(SPECIES, shard),
            ).success
        yield instance, settings


def _range_tags(first: str, last: str) -> dict:
    return {
        ASSET_PARTITION_RANGE_START_TAG: str(sample_partition_key(SPECIES, first)),
        ASSET_PARTITION_RANGE_END_TAG: str(sample_partition_key(SPECIES, last)),
    }


def _outputs(root) -> dict:
    """Every file the GPU stages wrote for the two shards: tables as frames (provenance without its
    run id and time), images as bytes."""
    out = {}
    for asset in ("captions", "prompts", "images"):
        for shard in SHARDS:
            df = pd.read_parquet(root / asset / SPECIES / f"{shard}.parquet")
            if "provenance" in df:
                df["provenance"] = [_stable(p) for p in df["provenance"]]
            out[(asset, shard)] = df
    for path in sorted((root / "images" / SPECIES).rglob("*.jpg")):
        out[path.relative_to(root)] = path.read_bytes()
    return out


def _stable(provenance: str) -> dict:
    record = json.loads(provenance)
    record.pop("run_id"), record.pop("created_at")
    return record


def _events(result, asset: str) -> dict:
    return {
        str(e.materialization.partition): e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(asset)
    }


@pytest.mark.slow  # three GPU stages over two partitions, then over each alone (~30 s)
def test_a_range_run_writes_each_partition_as_a_run_of_one(chain):
    instance, settings = chain
    root = settings.root()
    ranged = dg.materialize(
        GPU_ASSETS,
        instance=instance,
        resources={"settings": settings},
        tags=_range_tags(*SHARDS),
    )
    assert ranged.success
    together = _outputs(root)
    assert len([k for k in together if not isinstance(k, tuple)]) == 4  # 2 images a shard
    for asset in ("captions", "prompts", "images"):
        events = _events(ranged, asset)
        assert set(events) == {str(sample_partition_key(SPECIES, s)) for s in SHARDS}
        for meta in events.values():
            assert meta["partitions"].value == [f"{SPECIES}/{s}" for s in SHARDS]
            assert meta["num_partitions"].value == 2 and meta["model_loads"].value == 0
            assert meta["num_samples"].value == 2  # the partition's own, not the step's 4
        paths = {m["path"].value for m in events.values()}
        assert paths == {str(root / asset / SPECIES / f"{s}.parquet") for s in SHARDS}

    (
        shutil.rmtree(root / "captions"),
        shutil.rmtree(root / "prompts"),
        shutil.rmtree(root / "images"),
    )
    for shard in SHARDS:
        alone = dg.materialize(
            GPU_ASSETS,
            instance=instance,
            resources={"settings": settings},
            partition_key=sample_partition_key(SPECIES, shard),
        )
        assert alone.success
        assert _events(alone, "images")[str(sample_partition_key(SPECIES, shard))][
            "partitions"
        ].value == [f"{SPECIES}/{shard}"]
    one_by_one = _outputs(root)
    assert together.keys() == one_by_one.keys()
    for key, value in together.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, one_by_one[key])
        else:
            assert value == one_by_one[key], key


@pytest.mark.slow  # a tiny Qwen2 in bf16 prompting two partitions (~15 s)
def test_a_range_run_loads_a_model_backed_prompter_once(chain, tmp_path):
    instance, settings = chain
    assert dg.materialize(
        [captions],
        instance=instance,
        resources={"settings": settings},
        tags=_range_tags(*SHARDS),
    ).success
    folder = save_tiny_qwen2(tmp_path / "qwen")
    config = {"ops": {"prompts": {"config": {"backend": "llm", "model_dir": str(folder)}}}}
    residency.release_all()
    before = residency.loads
    result = dg.materialize(
        [prompts],
        instance=instance,
        resources={"settings": settings},
        run_config=config,
        tags=_range_tags(*SHARDS),
    )
    assert result.success
    assert residency.loads == before + 1
    events = _events(result, "prompts")
    assert len(events) == 2
    for meta in events.values():
        assert meta["model_loads"].value == 1
        assert meta["backends"].value == {"llm:qwen+orientation": 2}
    residency.release_all()


class _Planted(InputError):
    """A failure planted in the second partition (an input error: the step is not retried)."""


def test_a_failure_keeps_the_partitions_before_it_written_and_materialised(chain, monkeypatch):
    instance, settings = chain
    root = settings.root()
    shutil.rmtree(root / "captions", ignore_errors=True)
    real = text_defs.text.caption_partition

    def fails_on_the_second(rows, *args, **kwargs):
        if rows["sample_id"].str.contains(f".{SHARDS[1]}.", regex=False).any():
            raise _Planted(f"planted failure in shard {SHARDS[1]}")
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(text_defs.text, "caption_partition", fails_on_the_second)
    with dg.instance_for_test() as fresh:  # no earlier materialisation of captions
        fresh.add_dynamic_partitions(SPECIES_PARTITIONS_NAME, [SPECIES])
        result = dg.materialize(
            [captions],
            instance=fresh,
            resources={"settings": settings},
            tags=_range_tags(*SHARDS),
            raise_on_error=False,
        )
        assert not result.success
        assert (root / "captions" / SPECIES / f"{SHARDS[0]}.parquet").exists()
        assert not (root / "captions" / SPECIES / f"{SHARDS[1]}.parquet").exists()
        done = fresh.get_materialized_partitions(dg.AssetKey("captions"))
        assert done == {str(sample_partition_key(SPECIES, SHARDS[0]))}
        record = fresh.get_latest_materialization_event(dg.AssetKey("captions"))
        meta = record.asset_materialization.metadata
        assert meta["partitions"].value == [f"{SPECIES}/{SHARDS[0]}"]
        assert meta["num_samples"].value == 2


def test_a_backfill_asks_for_ranges_of_one_species_for_the_gpu_assets_only():
    shards = [f"{i:03d}" for i in range(MODEL_PARTITIONS_PER_RUN + 2)]
    graph = dg.Definitions(
        assets=[shape_params, captions], resources={"settings": GenZooSettings()}
    ).resolve_asset_graph()
    assert graph.get(dg.AssetKey("captions")).backfill_policy == MODEL_BACKFILL
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(SPECIES_PARTITIONS_NAME, [SPECIES, "canis-lupus"])
        wanted = [
            AssetKeyPartitionKey(dg.AssetKey(asset), sample_partition_key(sp, shard))
            for asset in ("shape_params", "captions")
            for sp in (SPECIES, "canis-lupus")
            for shard in shards
        ]
        with partition_loading_context(dynamic_partitions_store=instance):
            requests = build_run_requests_with_backfill_policies(wanted, graph, instance)
    gpu = [r for r in requests if dg.AssetKey("captions") in r.asset_selection]
    cpu = [r for r in requests if dg.AssetKey("shape_params") in r.asset_selection]
    assert len(cpu) == 2 * len(shards) and all(r.partition_key for r in cpu)
    ranges = sorted(
        (r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])
        for r in gpu
    )
    expected = sorted(
        (str(sample_partition_key(sp, first)), str(sample_partition_key(sp, last)))
        for sp in (SPECIES, "canis-lupus")
        for first, last in [(shards[0], shards[-3]), (shards[-2], shards[-1])]
    )
    assert ranges == expected
