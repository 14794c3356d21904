import pandas as pd
import pytest

from genzoo_assets.core.catalog.query import catalog_views, query
from genzoo_assets.core.catalog.refresh import refresh_catalog
from genzoo_assets.core.catalog.results import refresh_results, result_tables
from genzoo_assets.core.tables import write_table_atomic


def _samples(root):
    ids = [f"panthera-leo.000.{i:05d}" for i in range(3)]
    write_table_atomic(
        pd.DataFrame(
            {
                "sample_id": ids,
                "species": "panthera-leo",
                "shard": "000",
                "index": [0, 1, 2],
                "seed": [1, 2, 3],
            }
        ),
        root / "shape_params" / "panthera-leo" / "000.parquet",
    )
    return ids


def test_metrics_and_lineage_live_in_results_and_join_samples_by_name(tmp_path):
    root = tmp_path / "data"
    ids = _samples(root)
    write_table_atomic(
        pd.DataFrame({"sample_id": ids[:2], "method": "genzoo", "pck_010": [0.5, 0.7]}),
        root / "benchmark" / "heldout" / "predictions.parquet",
    )
    write_table_atomic(
        pd.DataFrame(
            {
                "split": "train",
                "shard": "train-000000.tar",
                "sample_id": ids,
                "checkpoint": "regressor/checkpoint.pt",
            }
        ),
        root / "regressor" / "lineage.parquet",
    )
    refresh_catalog(root)
    assert "metrics" not in catalog_views(root) and "training_lineage" not in catalog_views(root)
    predictions = {
        "heldout": root / "benchmark" / "heldout" / "predictions.parquet",
        "animal3d": root / "benchmark" / "animal3d" / "predictions.parquet",
    }  # not run yet
    refresh_results(root, predictions, root / "regressor" / "lineage.parquet")
    assert result_tables(root) == ["metrics", "training_lineage"]
    joined = query(
        "SELECT m.test_set, avg(m.pck_010) AS pck, count(DISTINCT s.seed) AS n "
        "FROM metrics m JOIN samples s USING (sample_id) GROUP BY 1",
        root,
    )
    assert joined.to_dict("records") == [{"test_set": "heldout", "pck": pytest.approx(0.6), "n": 2}]
    assert (
        query("SELECT count(*) AS n FROM training_lineage JOIN samples USING (sample_id)", root)[
            "n"
        ][0]
        == 3
    )


def test_a_new_results_file_is_seen_by_the_next_query_and_absent_inputs_leave_tables_out(tmp_path):
    root = tmp_path / "data"
    _samples(root)
    refresh_catalog(root)
    refresh_results(root, {}, None)
    assert result_tables(root) == []
    assert query("SELECT count(*) AS n FROM samples", root)["n"][0] == 3
    write_table_atomic(
        pd.DataFrame({"sample_id": ["x"], "pck_010": [1.0]}), root / "b" / "predictions.parquet"
    )
    refresh_results(
        root,
        {"heldout": root / "b" / "predictions.parquet"},
        root / "regressor" / "lineage.parquet",
    )
    assert query("SELECT count(*) AS n FROM metrics", root)["n"][0] == 1


def test_several_test_sets_whose_rows_carry_test_set_make_one_metrics_table(tmp_path):
    """The benchmark's rows carry `test_set` themselves: two sets must not give two such columns."""
    root = tmp_path / "data"
    ids = _samples(root)
    predictions = {}
    for name in ("heldout", "val"):
        predictions[name] = root / "benchmark" / name / "predictions.parquet"
        write_table_atomic(
            pd.DataFrame({"sample_id": ids, "test_set": name, "method": "genzoo", "e": 1.0}),
            predictions[name],
        )
    refresh_catalog(root)
    refresh_results(root, predictions, None)
    counts = query("SELECT test_set, count(*) AS n FROM metrics GROUP BY 1 ORDER BY 1", root)
    assert counts.to_dict("records") == [
        {"test_set": "heldout", "n": 3},
        {"test_set": "val", "n": 3},
    ]
