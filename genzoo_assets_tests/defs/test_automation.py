"""The new-species sensor, the nightly schedule and the catalog's automation condition, evaluated
against a real Dagster instance and a small species table (1–2 planned shards per species)."""

import dagster as dg
import pytest

from genzoo_assets.core.taxonomy import frame
from genzoo_assets.defs import automation
from genzoo_assets.defs.catalog import EAGER_ALLOW_MISSING, catalog
from genzoo_assets.defs.images import images
from genzoo_assets.defs.partitions import SPECIES_PARTITIONS_NAME, sample_partition_key
from genzoo_assets.defs.render import control_renders
from genzoo_assets.defs.resources import GenZooSettings
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species
from genzoo_assets.defs.text import captions, prompts
from genzoo_assets.defs.training import dataset_shards

SIZES = {"dataset_size": 2000, "samples_per_shard": 4}
SKUNK = "mephitis-macroura"
PER_SAMPLE = [shape_params, pose_params, control_renders, captions, prompts, images]


@pytest.fixture
def root(tmp_path):
    return tmp_path / "data"


def _materialize_species(root, instance):
    settings = GenZooSettings(data_dir=str(root), **SIZES)
    assert dg.materialize([species], instance=instance, resources={"settings": settings}).success


@pytest.fixture
def registered(root, instance):
    """The `species` asset materialised: table on disk, every species a dynamic partition."""
    _materialize_species(root, instance)
    return frame.read_species_table(root)


def _resources(root):
    return {"settings": GenZooSettings(data_dir=str(root), **SIZES)}


def _tick(instance, root, cursor=None):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=_resources(root)
    ) as context:
        return automation.new_species_sensor(context)


def _schedule(instance, root):
    with dg.build_schedule_context(instance=instance, resources=_resources(root)) as context:
        return automation.incremental_regeneration(context)


def _add_skunk(root, instance):
    """`genzoo species add "Hooded Skunk"` (record, then the `species` asset), then one sensor tick."""
    first = _tick(instance, root)
    row, newly = frame.add_species_by_name(root, "Hooded Skunk", **SIZES)
    assert newly and row["key"] == SKUNK
    assert SKUNK not in set(
        frame.read_species_table(root)["key"]
    )  # the command leaves the table to the asset
    _materialize_species(root, instance)
    return row, _tick(instance, root, first.cursor)


def _keys(requests):
    return [r.partition_key for r in requests]


def test_no_species_table_skips(root, instance):
    result = _tick(instance, root)
    assert isinstance(result, dg.SkipReason)
    assert "species" in result.skip_message
    assert isinstance(_schedule(instance, root), dg.SkipReason)


def test_first_tick_after_species_asset_requests_nothing(root, registered, instance):
    result = _tick(instance, root)
    assert isinstance(result, dg.SensorResult)
    assert result.run_requests == [] and result.dynamic_partitions_requests == []
    assert set(result.cursor.split(",")) == set(registered["key"])
    assert _tick(instance, root, result.cursor).run_requests == []


def test_added_species_is_registered_and_gets_exactly_its_planned_shards(
    root, registered, instance
):
    assert SKUNK not in instance.get_dynamic_partitions(SPECIES_PARTITIONS_NAME)
    row, result = _add_skunk(root, instance)
    assert row["planned_shards"] == 2
    assert SKUNK in instance.get_dynamic_partitions(
        SPECIES_PARTITIONS_NAME
    )  # by the species asset, the one registrar
    assert result.dynamic_partitions_requests == []
    assert _keys(result.run_requests) == [
        sample_partition_key(SKUNK, "000"),
        sample_partition_key(SKUNK, "001"),
    ]
    assert SKUNK in result.cursor.split(",")
    assert _tick(instance, root, result.cursor).run_requests == []  # seen: not requested twice

    defs = dg.Definitions(
        assets=PER_SAMPLE,
        jobs=[automation.generate_samples],
        resources={"settings": GenZooSettings(data_dir=str(root), **SIZES)},
    )
    job = defs.resolve_job_def("generate_samples")
    valid = {
        str(k) for k in job.partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    }
    assert {str(k) for k in _keys(result.run_requests)} <= valid


def test_species_cut_off_by_the_cap_stays_unseen(root, registered, instance, monkeypatch):
    monkeypatch.setattr(automation, "MAX_RUNS_PER_TICK", 1)
    _, result = _add_skunk(root, instance)
    assert _keys(result.run_requests) == [sample_partition_key(SKUNK, "000")]
    assert SKUNK not in result.cursor.split(",")
    again = _tick(instance, root, result.cursor)
    assert again.dynamic_partitions_requests == []
    assert [r.run_key for r in again.run_requests] == [
        str(sample_partition_key(SKUNK, "000"))
    ]  # daemon dedupes


def test_schedule_requests_only_missing_registered_partitions(
    root, registered, instance, monkeypatch
):
    frame.add_species_by_name(
        root, "Hooded Skunk", **SIZES
    )  # requested, not yet in the table nor registered
    done = sample_partition_key(registered["key"].iloc[0], "000")
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key="images", partition=str(done))
    )
    assert str(done) in {
        str(k) for k in instance.get_materialized_partitions(dg.AssetKey("images"))
    }

    table = frame.read_species_table(root)
    reg = set(table["key"]) - {SKUNK}
    planned = int(table.loc[table["key"].isin(reg), "planned_shards"].sum())
    expected = automation.missing_partitions(instance, table, species_keys=reg)
    assert len(expected) == planned - 1 and str(done) not in {str(k) for k in expected}
    assert all(k.keys_by_dimension["species"] != SKUNK for k in expected)

    monkeypatch.setattr(automation, "MAX_RUNS_PER_TICK", 10_000)
    requests = _schedule(instance, root)
    assert {str(k) for k in _keys(requests)} == {str(k) for k in expected}
    assert all(r.run_key is None for r in requests)

    monkeypatch.setattr(automation, "MAX_RUNS_PER_TICK", 5)
    capped = _schedule(instance, root)
    assert _keys(capped) == expected[:5]


def test_catalog_and_shards_automate_with_eager_allow_missing():
    assert EAGER_ALLOW_MISSING.get_label() == "eager_allow_missing"
    assert _blocks_on_missing_deps(dg.AutomationCondition.eager())  # the check can see the operand
    for asset in (catalog, dataset_shards):
        [condition] = asset.automation_conditions_by_key.values()
        assert condition.get_label() == "eager_allow_missing"
        assert not _blocks_on_missing_deps(condition)


def _leaves(condition):
    yield condition
    for child in condition.children:
        yield from _leaves(child)


def _blocks_on_missing_deps(condition) -> bool:
    """True if any `~any_deps_missing` operand survives in the condition tree."""
    return any(
        type(c).__name__ == "NotAutomationCondition" and c.operand.get_label() == "any_deps_missing"
        for c in _leaves(condition)
    )


def _catalog_requests(instance, root, table, condition) -> int:
    """Catalog requests on the tick after one `images` partition lands (the first tick only
    records state: an eager condition fires on updates since then)."""
    automated = catalog.map_asset_specs(
        lambda spec: spec.replace_attributes(automation_condition=condition)
    )
    defs = dg.Definitions(
        assets=[species, *PER_SAMPLE, automated],
        resources={"settings": GenZooSettings(data_dir=str(root), **SIZES)},
    )
    selection = dg.AssetSelection.assets(catalog)
    first = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection
    )
    key = sample_partition_key(table["key"].iloc[len(table) // 2], "001")
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key="images", partition=str(key))
    )
    result = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=selection, cursor=first.cursor
    )
    return result.get_num_requested(catalog.key)


def test_catalog_requested_while_most_partitions_are_missing(root, registered, instance):
    assert _catalog_requests(instance, root, registered, EAGER_ALLOW_MISSING) == 1


def test_plain_eager_would_wait_for_every_partition(root, registered, instance):
    assert _catalog_requests(instance, root, registered, dg.AutomationCondition.eager()) == 0
