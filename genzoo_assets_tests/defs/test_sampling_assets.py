"""Two species × one shard through Dagster, read back through the catalog; reruns are idempotent."""

import hashlib

import dagster as dg
import pytest

from genzoo_assets.core.catalog import query
from genzoo_assets.defs.catalog import catalog
from genzoo_assets.defs.partitions import sample_partition_key
from genzoo_assets.defs.sampling import pose_params, shape_params
from genzoo_assets.defs.species import species

pytestmark = pytest.mark.slow  # two species materialised twice, plus the catalog (~15 s idle)

SPECIES = ["panthera-leo", "dog-labrador-retriever"]


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _materialize(assets, instance, settings, partition_key=None):
    result = dg.materialize(
        assets, instance=instance, resources={"settings": settings}, partition_key=partition_key
    )
    assert result.success
    return result


@pytest.fixture
def sampled(instance, settings):
    _materialize([species], instance, settings)
    registered = set(instance.get_dynamic_partitions("species"))
    assert set(SPECIES) <= registered
    for key in SPECIES:
        _materialize(
            [shape_params, pose_params], instance, settings, sample_partition_key(key, "000")
        )
    _materialize([catalog], instance, settings)
    return settings.root()


def test_two_species_through_dagster_read_back_through_the_catalog(sampled, settings):
    rows = query.query(
        "SELECT species, count(*) AS n, count(DISTINCT sample_id) AS ids FROM samples GROUP BY 1 ORDER BY 1",
        data_dir=sampled,
    )
    assert rows["species"].tolist() == sorted(SPECIES)
    assert rows["n"].tolist() == [settings.samples_per_shard] * 2
    assert rows["ids"].tolist() == [settings.samples_per_shard] * 2
    one = query.query(
        "SELECT betas, global_orient, body_pose, keypoints_3d, provenance FROM samples LIMIT 1",
        data_dir=sampled,
    )
    assert len(one["betas"].iloc[0]) > 0 and len(one["body_pose"].iloc[0]) == 102
    assert len(one["keypoints_3d"].iloc[0]) == 78
    assert "run_id" in one["provenance"].iloc[0]


def test_rerun_is_byte_identical_and_adds_no_rows(sampled, instance, settings):
    key = sample_partition_key(SPECIES[0], "000")
    shape_file = sampled / "shape_params" / SPECIES[0] / "000.parquet"
    before = query.query(
        "SELECT sample_id, betas, body_pose FROM samples ORDER BY sample_id", data_dir=sampled
    )
    _materialize([shape_params, pose_params], instance, settings, key)
    _materialize([catalog], instance, settings)
    after = query.query(
        "SELECT sample_id, betas, body_pose FROM samples ORDER BY sample_id", data_dir=sampled
    )
    assert len(after) == len(before)
    for col in ("betas", "body_pose"):
        assert all((a == b).all() for a, b in zip(before[col], after[col]))
    assert shape_file.exists()
