import json

import cv2
import numpy as np
import pytest
import torch

from genzoo_assets.core.evaluate.animal3d import Animal3DError, load_animal3d
from genzoo_assets.core.evaluate.benchmark_set import benchmark_set_from_animal3d
from genzoo_assets_tests.core.evaluate.tiny_model import tiny_body_model


def _item(i: int, rng) -> dict:
    kp = np.c_[rng.uniform(4, 28, size=(26, 2)), (rng.uniform(size=26) > 0.3).astype(float)]
    shape = rng.normal(size=41)
    return {
        "img_path": f"images/test/{i:03d}.jpg",
        "mask_path": f"masks/test/{i:03d}.png",
        "supercategory": ["dog", "horse", "dog"][i % 3],
        "keypoint_2d": kp.tolist(),
        "keypoint_3d": rng.normal(size=(26, 3)).tolist(),
        "bbox": [4.0, 6.0, 20.0 + i, 16.0],
        "pose": rng.normal(scale=0.2, size=105).tolist(),
        "shape": shape[:20].tolist(),
        "shape_extra": shape[20:].tolist(),
        "trans": [0.1, -0.2, 3.0 + i],
    }


def write_release(root, n=3, mask_fill=(8, 24), edit=None):
    rng = np.random.default_rng(7)
    items = [_item(i, rng) for i in range(n)]
    if edit:
        edit(items)
    for i in range(n):
        (root / "images/test").mkdir(parents=True, exist_ok=True)
        (root / "masks/test").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / f"images/test/{i:03d}.jpg"), np.full((32, 32, 3), 40 * i, np.uint8))
        mask = np.zeros((32, 32), np.uint8)
        mask[mask_fill[0] : mask_fill[1], mask_fill[0] : mask_fill[1]] = 255
        cv2.imwrite(str(root / f"masks/test/{i:03d}.png"), mask)
    path = root / "test.json"
    path.write_text(json.dumps({"info": {}, "data": items}))
    return path, items


def test_loads_release_and_derives_geometry(tmp_path, body_model):
    path, items = write_release(tmp_path)
    a3d = load_animal3d(path, body_model)
    assert len(a3d) == 3 and a3d.supercategory == ["dog", "horse", "dog"]
    assert (
        a3d.keypoints_2d.shape == (3, 26, 3)
        and a3d.betas.shape == (3, 41)
        and a3d.pose.shape == (3, 35, 3)
    )
    np.testing.assert_allclose(a3d.betas[1], items[1]["shape"] + items[1]["shape_extra"])
    assert a3d.image_paths[2] == tmp_path / "images/test/002.jpg"
    pose = torch.as_tensor(a3d.pose, dtype=torch.float32)
    out = body_model(
        torch.as_tensor(a3d.betas, dtype=torch.float32),
        pose[:, 0],
        pose[:, 1:],
        transl=torch.as_tensor(a3d.trans, dtype=torch.float32),
    )
    np.testing.assert_allclose(a3d.vertices, out.vertices.numpy(), atol=1e-5)
    np.testing.assert_allclose(a3d.keypoints_3d, out.keypoints.numpy(), atol=1e-5)
    assert a3d.joints.shape == (3, 35, 3)

    bench = benchmark_set_from_animal3d(a3d)
    np.testing.assert_array_equal(bench.mask_area, [256.0] * 3)
    np.testing.assert_allclose(bench.crop_center[0], [14.0, 14.0])
    np.testing.assert_allclose(bench.crop_size, [32.0, 33.6, 35.2])
    np.testing.assert_allclose(bench.crop_box[0], [14.0, 14.0, 32.0])
    np.testing.assert_array_equal(bench.visibility, a3d.keypoints_2d[..., 2] > 0)
    np.testing.assert_allclose(
        bench.gt_rotmat @ np.swapaxes(bench.gt_rotmat, -1, -2),
        np.broadcast_to(np.eye(3), (3, 35, 3, 3)),
        atol=1e-9,
    )


@pytest.mark.parametrize("num_betas", [20, 45, 145])
def test_ground_truth_needs_smals_41_beta_model(tmp_path, num_betas):
    path, _ = write_release(tmp_path, n=1)
    with pytest.raises(
        Animal3DError,
        match=f"needs SMAL's 41-beta model; 'tiny-test-model-{num_betas}' has {num_betas} betas",
    ):
        load_animal3d(path, tiny_body_model(num_betas))


def test_json_keypoint_3d_can_be_the_ground_truth(tmp_path, body_model):
    path, items = write_release(tmp_path)
    smal = load_animal3d(path, body_model)
    a3d = load_animal3d(path, body_model, keypoints_3d="json")
    assert a3d.keypoints_3d_source == "json" and smal.keypoints_3d_source == "smal"
    np.testing.assert_allclose(a3d.keypoints_3d[2], items[2]["keypoint_3d"], atol=1e-6)
    np.testing.assert_allclose(
        a3d.vertices, smal.vertices
    )  # V2V ground truth still comes from SMAL
    assert not np.allclose(a3d.keypoints_3d, smal.keypoints_3d)
    np.testing.assert_allclose(benchmark_set_from_animal3d(a3d).gt_keypoints_3d, a3d.keypoints_3d)
    assert benchmark_set_from_animal3d(smal).gt_keypoints_3d is None
    path, _ = write_release(tmp_path, edit=_drop("keypoint_3d"))
    with pytest.raises(Animal3DError, match=r"data\[1\] has no 'keypoint_3d'"):
        load_animal3d(path, body_model, keypoints_3d="json")
    with pytest.raises(Animal3DError, match="keypoints_3d must be one of"):
        load_animal3d(path, body_model, keypoints_3d="both")


def test_zero_area_mask_is_named(tmp_path, body_model):
    path, _ = write_release(tmp_path, mask_fill=(0, 0))
    with pytest.raises(ValueError, match=r"data\[0\] mask .*000.png is empty"):
        benchmark_set_from_animal3d(load_animal3d(path, body_model))


def _drop(field):
    return lambda items: items[1].pop(field)


def _set(index, field, value):
    return lambda items: items[index].__setitem__(field, value)


@pytest.mark.parametrize(
    "edit, match",
    [
        (_drop("pose"), r"data\[1\] is missing field\(s\) \['pose'\]"),
        (lambda it: it[2]["pose"].pop(), r"data\[2\]\.pose has 104 values.*expected 105"),
        (lambda it: it[0]["keypoint_2d"].pop(), r"data\[0\]\.keypoint_2d has 75 values.*26×3"),
        (_set(1, "trans", [0.0, float("nan"), 1.0]), r"data\[1\]\.trans has non-finite"),
        (_set(0, "shape_extra", [0.0] * 5), r"data\[0\]\.shape \+ shape_extra have 25 values"),
        (_set(2, "bbox", "wide"), r"data\[2\]\.bbox is not a numeric array"),
        (_set(0, "bbox", [1, 1, 0, 5]), r"data\[0\]\.bbox .* non-positive"),
    ],
)
def test_bad_items_are_named(tmp_path, body_model, edit, match):
    path, _ = write_release(tmp_path, edit=edit)
    with pytest.raises(Animal3DError, match=match) as info:
        load_animal3d(path, body_model)
    assert str(path) in str(info.value)


def test_bad_files(tmp_path, body_model):
    with pytest.raises(Animal3DError, match="does not exist"):
        load_animal3d(tmp_path / "nope.json", body_model)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(Animal3DError, match="bad.json is not valid JSON"):
        load_animal3d(bad, body_model)
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(Animal3DError, match="no top-level 'data' list"):
        load_animal3d(bad, body_model)
    path, _ = write_release(tmp_path)
    (tmp_path / "masks/test/001.png").unlink()
    with pytest.raises(Animal3DError, match=r"data\[1\]\.mask_path .*001.png does not exist"):
        load_animal3d(path, body_model)
    assert len(load_animal3d(path, body_model, check_files=False)) == 3
