"""The adaptive loop through Dagster: validation errors in `results.duckdb` → `sampling_plan` →
a planned round whose partitions draw under the plan (byte-identical on rerun, columns in the
catalog) → the sensor launches them, tagged, and never a held-out species."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from genzoo_assets.core import layout
from genzoo_assets.core.catalog import query
from genzoo_assets.core.catalog.results import refresh_results
from genzoo_assets.core.dataset.webdataset import FORMAT, INDEX, MANIFEST
from genzoo_assets.core.planning.plan import ROUND_COLUMNS, newest_round, partition_plan
from genzoo_assets.core.tables import write_table_atomic
from genzoo_assets.defs import automation
from genzoo_assets.defs.catalog import catalog
from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.planning import sampling_plan
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species

pytestmark = pytest.mark.slow  # four partitions sampled, the catalog twice, the plan (~40 s)

VAL, TRAIN, HELDOUT = "dog-labrador-retriever", "canis-lupus", "panthera-leo"


def _run(assets, instance, settings, partition_key=None, config=None):
    result = dg.materialize(
        assets,
        instance=instance,
        resources={"settings": settings},
        partition_key=partition_key,
        run_config=config,
    )
    assert result.success
    return result


def _write_manifest(shards, families, heldout_species):
    """The fields of an export's manifest that say what its test split holds out."""
    manifest = {
        "format": FORMAT,
        "heldout_families": families,
        "species": {"heldout": heldout_species},
    }
    (shards / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture
def scored(instance, settings):
    """Three species sampled (one shard each), the catalog, a fake export index (val / train /
    heldout by species) and per-sample validation errors in `results.duckdb`."""
    _run([species], instance, settings)
    registered = set(instance.get_dynamic_partitions("species"))
    assert {VAL, TRAIN, HELDOUT} <= registered
    for key in (VAL, TRAIN, HELDOUT):
        _run([shape_params, pose_params], instance, settings, sample_partition_key(key, "000"))
    _run([catalog], instance, settings)
    root = settings.root()
    rows = query.query("SELECT sample_id, species, family, posture FROM samples", data_dir=root)
    split = rows["species"].map({VAL: "val", TRAIN: "train", HELDOUT: "heldout"})
    shards = layout.shards_dir(root)
    shards.mkdir(parents=True)
    _write_manifest(shards, ["Felidae"], [HELDOUT])
    write_table_atomic(
        pd.DataFrame({"split": split, "shard": "000000", "sample_id": rows["sample_id"]}),
        shards / INDEX,
    )
    metrics = []
    for test_set in ("val", "heldout"):
        part = rows[split == test_set]
        err = 50.0 + 40.0 * (part["posture"] == "lying").to_numpy()
        metrics.append(
            part.assign(test_set=test_set, method="genzoo", pa_mpjpe=err, **{"pck@0.10": 0.5})
        )
        path = layout.predictions_file(root, test_set)
        path.parent.mkdir(parents=True)
        metrics[-1].to_parquet(path, index=False)
    refresh_results(
        root, {n: layout.predictions_file(root, n) for n in ("val", "heldout")}, lineage=None
    )
    return root


def test_the_plan_asset_plans_training_species_only_and_once(scored, instance, settings):
    config = {"ops": {"sampling_plan": {"config": {"round_shards": 2}}}}
    result = _run([sampling_plan], instance, settings, config=config)
    meta = result.asset_materializations_for_node("sampling_plan")[0].metadata
    plan_id = meta["plan_id"].value
    plan = json.loads(layout.plan_file(scored, plan_id).read_text())
    assert plan["round"] == 1 and meta["round"].value == 1
    assert plan["factors"]["species"]["levels"] == [TRAIN]  # not val, not held out
    assert {p["species"] for p in plan["partitions"]} == {TRAIN}
    assert [p["shard"] for p in plan["partitions"]] == ["001", "002"]  # after the used shard 000
    assert plan["inputs"]["n_samples"] == settings.samples_per_shard  # the val species' samples
    assert "error_by_factor" in meta and "weights_plot" in meta
    again = _run([sampling_plan], instance, settings, config=config)
    assert again.asset_materializations_for_node("sampling_plan")[0].metadata["round"].value == 1
    assert newest_round(scored)[0] == 1  # the same inputs add no round


def _strip(df):
    prov = [json.loads(p) for p in df["provenance"]]
    for p in prov:
        p.pop("created_at"), p.pop("run_id")
    return df.assign(provenance=[json.dumps(p, sort_keys=True) for p in prov])


def test_a_planned_partition_reruns_identically_and_shows_in_the_catalog(
    scored, instance, settings
):
    _run([sampling_plan], instance, settings)
    _, plan_id, partitions = newest_round(scored)
    key = sample_partition_key(*partitions[0])
    first = _run([shape_params, pose_params], instance, settings, key)
    meta = first.asset_materializations_for_node("pose_params")[0].metadata
    assert meta["plan_id"].value == plan_id and meta["round"].value == 1
    path = layout.partition_table(scored, "pose_params", *partitions[0])
    a = pd.read_parquet(path)
    _run([shape_params, pose_params], instance, settings, key)
    b = pd.read_parquet(path)
    pd.testing.assert_frame_equal(_strip(a), _strip(b))
    assert (a["plan_id"] == plan_id).all()
    _run([catalog], instance, settings)
    rows = query.query(
        "SELECT species, round, plan_id, importance_weight FROM samples ORDER BY species, shard",
        data_dir=scored,
    )
    planned = rows[rows["plan_id"].notna()]
    assert len(planned) == settings.samples_per_shard and (planned["round"] == 1).all()
    assert np.isfinite(planned["importance_weight"]).all()
    uniform = rows[rows["plan_id"].isna()]
    assert (uniform["round"] == 0).all() and (uniform["importance_weight"] == 1.0).all()
    assert partition_plan(scored, HELDOUT, "000") is None


def test_the_sensor_plans_after_a_benchmark_then_launches_the_round_tagged(
    scored, instance, settings
):
    def tick(cursor=None):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"settings": settings}
        ) as context:
            return automation.adaptive_rounds_sensor(context)

    assert isinstance(tick(), dg.SkipReason)  # no `results` materialisation yet
    instance.report_runless_asset_event(dg.AssetMaterialization("results"))
    first = tick()
    assert [r.job_name for r in first.run_requests] == ["plan_next_round"]
    _run([sampling_plan], instance, settings)
    second = tick(first.cursor)
    round_no, plan_id, partitions = newest_round(scored)
    assert [r.partition_key for r in second.run_requests] == [
        sample_partition_key(s, k) for s, k in partitions
    ]
    assert all(
        r.tags[automation.ROUND_TAG] == "1" and r.tags[automation.PLAN_TAG] == plan_id
        for r in second.run_requests
    )
    assert isinstance(tick(second.cursor), dg.SkipReason)  # launched once
    requests, _ = automation.planned_round_requests(scored, 0, heldout_species={TRAIN})
    assert requests == []  # a held-out species is never launched, whatever the ledger says


def test_a_held_out_family_changed_in_the_export_is_never_launched(instance, settings):
    """The sensor takes the held-out split from the current export, not a constant: with Canidae
    held out, a round the ledger plans for Canidae species launches none of them, and Felidae (no
    longer held out) is launched; a species the export holds out by name is never launched."""
    _run([species], instance, settings)
    root = settings.root()
    ledger = pd.DataFrame(
        [(TRAIN, "001", 1, "c" * 16), (HELDOUT, "001", 1, "c" * 16), (VAL, "001", 1, "c" * 16)],
        columns=ROUND_COLUMNS,
    )
    layout.planning_dir(root).mkdir(parents=True)
    write_table_atomic(ledger, layout.rounds_file(root))
    shards = layout.shards_dir(root)
    shards.mkdir(parents=True)

    def launched():
        requests, _ = automation.planned_round_requests(root, 0, automation.heldout_species(root))
        return {r.partition_key.keys_by_dimension["species"] for r in requests}

    assert launched() == {VAL, TRAIN}  # no export yet: the export's default, Felidae, held out
    _write_manifest(shards, ["Canidae"], [])
    assert launched() == {HELDOUT}  # the wolf and the Labrador are Canidae; the lion is not
    _write_manifest(shards, [], [VAL])  # a species the export held out by name
    assert launched() == {TRAIN, HELDOUT}
