import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genzoo_assets.core.tables import TableWriteError, read_table, write_table_atomic


def test_list_columns_typed_and_round_trip(tmp_path):
    df = pd.DataFrame(
        {
            "sample_id": ["a", "b"],
            "betas": [np.arange(3, dtype=np.float64), [0.5, 1.5, 2.5]],
            "keypoints_vis": [np.array([True, False]), np.array([False, False])],
            "index": [0, 1],
        }
    )
    path = write_table_atomic(df, tmp_path / "t" / "000.parquet")
    schema = pq.read_schema(path)
    assert schema.field("betas").type == pa.list_(pa.float32())
    assert schema.field("keypoints_vis").type == pa.list_(pa.bool_())
    back = read_table(path)
    np.testing.assert_allclose(back["betas"][1], [0.5, 1.5, 2.5])
    assert back["keypoints_vis"][0].tolist() == [True, False]
    assert sorted(p.name for p in path.parent.iterdir()) == ["000.parquet"]


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "x" / "000.parquet"
    bad = pd.DataFrame({"betas": [np.arange(2.0), np.array(["a", "b"])]})
    with pytest.raises(TableWriteError, match="betas"):
        write_table_atomic(bad, target)
    assert not target.exists()

    write_table_atomic(pd.DataFrame({"v": [1]}), target)
    with pytest.raises(TableWriteError, match="'v'"):
        write_table_atomic(pd.DataFrame({"v": [object()]}), target)
    assert read_table(target)["v"].tolist() == [1]  # the old file survives a failed rewrite
    assert [p.name for p in target.parent.iterdir()] == ["000.parquet"]


def test_read_missing_or_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        read_table(tmp_path / "nope.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="junk.parquet"):
        read_table(tmp_path / "junk.parquet")


def test_crash_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def half_write(table, where, **kwargs):
        open(where, "wb").write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_table_atomic(pd.DataFrame({"v": [1]}), tmp_path / "s" / "001.parquet")
    assert list((tmp_path / "s").iterdir()) == []


def test_ragged_and_missing_lists(tmp_path):
    df = pd.DataFrame(
        {
            "cond_scales": [[0.2, 0.65], None, np.array([1.0])],
            "pose": [np.zeros((2, 3)), np.ones((2, 3)), np.full((2, 3), 2.0)],
        }
    )
    back = read_table(write_table_atomic(df, tmp_path / "r.parquet"))
    assert back["cond_scales"][1] is None and back["cond_scales"][2].tolist() == [1.0]
    assert back["pose"][2].tolist() == [2.0] * 6  # (2, 3) stored flattened row-major
    assert pq.read_schema(tmp_path / "r.parquet").field("pose").type == pa.list_(pa.float32())
