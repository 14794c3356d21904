import pandas as pd
import pytest

from genzoo_assets.core.checks import SampleIdMismatchError
from genzoo_assets.defs.io import read_merged, write_partition


def _table(ids, **cols):
    return pd.DataFrame({"sample_id": ids, "species": "lion", "shard": "000", **cols})


def test_read_merged_joins_equal_id_sets_and_names_a_mismatch(tmp_path):
    ids = [f"lion.000.{i:05d}" for i in range(3)]
    write_partition(tmp_path, "pose_params", "lion", "000", _table(ids, yaw_deg=[0.0, 1.0, 2.0]))
    write_partition(tmp_path, "control_renders", "lion", "000", _table(ids[::-1], mask_area=[3, 2, 1]))
    merged = read_merged(tmp_path, ["pose_params", "control_renders"], "lion", "000")
    assert merged["sample_id"].tolist() == ids and merged["mask_area"].tolist() == [1, 2, 3]

    write_partition(tmp_path, "control_renders", "lion", "000", _table(ids[:1], mask_area=[1]))
    with pytest.raises(SampleIdMismatchError,
                       match=r"species=lion shard=000: .*control_renders lacks 2 \(lion.000.00001, lion.000.00002\)"):
        read_merged(tmp_path, ["pose_params", "control_renders"], "lion", "000")
