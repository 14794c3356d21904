"""The benchmark asset's Animal3D inputs: a separate 41-beta SMAL model, the keypoint_3d option."""

import numpy as np
import pytest

from genzoo_assets.core.body import save_body_model
from genzoo_assets.core.evaluate import Animal3DError
from genzoo_assets.defs.benchmark import BenchmarkConfig, _test_set
from genzoo_assets.defs.resources import Animal3DRelease, GenZooSettings
from genzoo_assets_tests.core.evaluate.test_animal3d import write_release
from genzoo_assets_tests.core.evaluate.tiny_model import tiny_body_model

NONE = Animal3DRelease()  # no release configured for the deployment


def test_animal3d_needs_its_own_smal_model(tmp_path):
    path, items = write_release(tmp_path)
    settings = GenZooSettings(data_dir=str(tmp_path / "data"))
    with pytest.raises(
        ValueError, match="needs SMAL's 41-beta model for its ground truth: set animal3d_smal_model"
    ):
        _test_set(
            "animal3d",
            BenchmarkConfig(animal3d_json=str(path), animal3d_smal_model=""),
            settings,
            NONE,
        )
    smal_plus = save_body_model(tiny_body_model(145), tmp_path / "smal_plus.npz")
    with pytest.raises(Animal3DError, match="smal_plus.npz' has 145 betas"):
        _test_set(
            "animal3d",
            BenchmarkConfig(animal3d_json=str(path), animal3d_smal_model=str(smal_plus)),
            settings,
            NONE,
        )

    smal = save_body_model(tiny_body_model(41), tmp_path / "smal.npz")
    config = BenchmarkConfig(
        animal3d_json=str(path), animal3d_smal_model=str(smal), animal3d_keypoints_3d="json"
    )
    test_set, gt_model = _test_set("animal3d", config, settings, NONE)
    assert gt_model.num_betas == 41 and gt_model.source == str(smal)
    assert test_set.gt_betas.shape == (3, 41) and test_set.gt_keypoints_3d.shape == (3, 26, 3)
    np.testing.assert_allclose(test_set.gt_keypoints_3d[1], items[1]["keypoint_3d"], atol=1e-6)


def test_the_deployments_release_resource_fills_an_empty_config(tmp_path):
    path, _ = write_release(tmp_path)
    smal = save_body_model(tiny_body_model(41), tmp_path / "smal.npz")
    settings = GenZooSettings(data_dir=str(tmp_path / "data"))
    release = Animal3DRelease(animal3d_json=str(path), animal3d_smal_model=str(smal))
    test_set, gt_model = _test_set("animal3d", BenchmarkConfig(), settings, release)
    assert gt_model.source == str(smal) and test_set.gt_betas.shape == (3, 41)
    with pytest.raises(ValueError, match="needs its release"):
        _test_set("animal3d", BenchmarkConfig(), settings, NONE)
