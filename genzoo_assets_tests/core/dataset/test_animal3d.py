"""Our own Animal3D loader reads the Animal3D-layout export back to the catalog's ground truth."""

import json

import numpy as np
import pytest

from genzoo_assets.core.dataset.animal3d import export_animal3d
from genzoo_assets.core.evaluate.animal3d import load_animal3d
from genzoo_assets_tests.core.dataset.conftest import make_catalog_rows


def test_export_round_trips_through_our_animal3d_loader(smal41, tmp_path):
    rows = make_catalog_rows(smal41, tmp_path / "data")
    out = tmp_path / "animal3d"
    calls = []
    result = export_animal3d(
        tmp_path / "data", out, smal41, samples=rows, progress=lambda *c: calls.append(c)
    )
    assert result["count"] == len(rows)
    assert calls == [(i, len(rows), 0, 0) for i in range(1, len(rows) + 1)]
    a3d = load_animal3d(out / "train.json", smal41)
    by_id = rows.set_index("sample_id")
    items = json.loads((out / "train.json").read_text())["data"]
    assert len(a3d) == len(rows)
    for i, item in enumerate(items):
        row = by_id.loc[item["sample_id"]]
        np.testing.assert_allclose(a3d.betas[i], row["betas"], rtol=1e-12)
        np.testing.assert_allclose(
            a3d.pose[i].reshape(-1), row["global_orient"] + row["body_pose"], rtol=1e-12
        )
        np.testing.assert_allclose(a3d.trans[i], row["transl"], rtol=1e-12)
        np.testing.assert_allclose(a3d.bbox[i], row["bbox"], rtol=1e-12)
        np.testing.assert_allclose(
            a3d.keypoints_2d[i, :, :2].reshape(-1), row["keypoints_2d"], rtol=1e-12
        )
        np.testing.assert_array_equal(a3d.keypoints_2d[i, :, 2] > 0, row["keypoints_vis"])
        # the geometry the loader derives from the JSON's SMAL parameters is the catalog's camera-frame body
        np.testing.assert_allclose(a3d.keypoints_3d[i].reshape(-1), row["keypoints_3d"], atol=1e-4)
        np.testing.assert_allclose(
            np.asarray(item["keypoint_3d"]).reshape(-1), row["keypoints_3d"], rtol=1e-12
        )
        assert a3d.image_paths[i].is_file() and a3d.mask_paths[i].is_file()
        assert (
            isinstance(item["supercategory"], int)
            and len(item["shape"]) == 20
            and len(item["shape_extra"]) == 21
        )
    assert {i["split"] for i in items} == {"train", "val", "heldout"}


def test_only_41_beta_smal_datasets_are_exported(smal41, body_model, tmp_path):
    rows = make_catalog_rows(body_model, tmp_path / "data", per_species=1)
    with pytest.raises(ValueError, match="20 betas and 4028 vertices"):
        export_animal3d(tmp_path / "data", tmp_path / "out", body_model, samples=rows)
    with pytest.raises(ValueError, match="has 20 betas: the dataset was not made"):
        export_animal3d(tmp_path / "data", tmp_path / "out", smal41, samples=rows)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_an_existing_folder_is_never_overwritten(smal41, tmp_path):
    rows = make_catalog_rows(smal41, tmp_path / "data", per_species=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists and is not empty"):
        export_animal3d(tmp_path / "data", tmp_path / "out", smal41, samples=rows)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
