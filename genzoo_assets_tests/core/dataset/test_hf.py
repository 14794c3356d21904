"""The Hugging Face export loads offline with `datasets` and holds the catalog's ground truth."""

import datasets
import numpy as np
import pytest
import yaml

from genzoo_assets.core.dataset.hf import export_hf
from genzoo_assets_tests.core.dataset.conftest import make_catalog_rows


@pytest.fixture(scope="module")
def exported(body_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    rows = make_catalog_rows(body_model, root / "data")
    calls = []
    result = export_hf(
        root / "data",
        root / "out",
        body_model,
        samples=rows,
        rows_per_file=1,
        progress=lambda *call: calls.append(call),
    )
    return rows, root / "out", result | {"progress": calls}


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))


def _compare(sample, row):
    assert sample["species"] == row["species"] and sample["family"] == row["family"]
    np.testing.assert_allclose(np.asarray(sample["betas"]), row["betas"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(sample["keypoints_2d"]).reshape(-1), row["keypoints_2d"], rtol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(sample["keypoints_3d"]).reshape(-1), row["keypoints_3d"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(sample["body_pose"]).reshape(-1), row["body_pose"], rtol=1e-5, atol=1e-6
    )
    assert list(sample["keypoints_vis"]) == list(row["keypoints_vis"])
    assert sample["image"].size == (64, 64) and sample["mask"].size == (64, 64)
    assert sample["caption"] == row["caption"]


def test_load_dataset_parquet_reads_images_and_ground_truth(exported, tmp_path):
    rows, out, result = exported
    ds = datasets.load_dataset("parquet", data_dir=str(out), cache_dir=str(tmp_path / "cache"))
    assert {s: len(ds[s]) for s in ds} == {k: v for k, v in result["counts"].items() if v}
    assert isinstance(ds["train"].features["image"], datasets.Image)
    sample = ds["train"][0]
    _compare(sample, rows.set_index("sample_id").loc[sample["sample_id"]])


def test_load_dataset_reads_the_card(exported, tmp_path):
    rows, out, result = exported
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    assert set(ds) == {"train", "validation", "test"}
    assert len(ds["test"]) == result["counts"]["test"] == 2  # Felidae is held out
    sample = ds["test"][1]
    _compare(sample, rows.set_index("sample_id").loc[sample["sample_id"]])
    card = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert "license" in card and card["license"] is None
    assert card["body_model"]["num_betas"] == 20
    assert {s["name"]: s["num_examples"] for s in card["dataset_info"]["splits"]} == result[
        "counts"
    ]
    assert (
        datasets.Features._from_yaml_list(card["dataset_info"]["features"]) == ds["train"].features
    )
    assert "| felis_catus | 0 | 0 | 2 |" in (out / "README.md").read_text()


def test_progress_counts_samples_and_shards(exported):
    rows, _, result = exported
    n = len(rows)  # one row per Parquet file: as many shards as samples
    assert result["progress"][0] == (1, n, 0, n)
    assert result["progress"][-1] == (n, n, n, n)
    done = [c[0] for c in result["progress"]]
    assert done == sorted(done) and len(result["progress"]) == 2 * n
