"""Shards read back with webdataset hold the DataFrame's arrays; splits are by species."""

import io

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import webdataset as wds

from genzoo_assets.core.body.mirror import JOINT_PARTNERS, mirror_points
from genzoo_assets.core.body.skeleton import KEYPOINT_NAMES
from genzoo_assets.core.dataset.records import wds_key
from genzoo_assets.core.dataset.splits import assign_splits
from genzoo_assets.core.dataset.webdataset import export_shards, read_manifest
from genzoo_assets.core.regressor.crop import crop_image, rotate_crop_points, to_crop_coords
from genzoo_assets.core.regressor.data import Augmentation, CachedSplit, load_split, materialize
from genzoo_assets.core.regressor.losses import weak_perspective_project
from genzoo_assets.core.sampling.camera_model import fov_from_genzoo_deg, genzoo_fov_deg
from genzoo_assets_tests.core.regressor.synthetic import pose_matrices


def test_shards_round_trip_the_dataframe(catalog):
    samples, result = catalog["samples"], catalog["result"]
    by_id = samples.set_index("sample_id")
    seen = set()
    for path, ids in result["shards"]:
        records = list(wds.WebDataset(path, shardshuffle=False, empty_check=False))
        assert [r["__key__"] for r in records] == [wds_key(i) for i in ids]
        assert len(ids) <= 8
        for rec in records:
            npz = np.load(io.BytesIO(rec["npz"]))
            sid = str(npz["sample_id"])
            row = by_id.loc[sid]
            seen.add(sid)
            assert npz["poses"].shape == (35, 9)
            np.testing.assert_allclose(
                npz["poses"].reshape(35, 3, 3), pose_matrices(row), atol=1e-6
            )
            np.testing.assert_allclose(npz["betas"], row["betas"], rtol=1e-6)
            np.testing.assert_allclose(
                npz["keypoints_2d"][:, :2].reshape(-1), row["keypoints_2d"], rtol=1e-6
            )
            np.testing.assert_array_equal(npz["keypoints_2d"][:, 2], 1.0)
            np.testing.assert_allclose(
                npz["keypoints_3d"].reshape(-1), row["keypoints_3d"], rtol=1e-5, atol=1e-6
            )
            np.testing.assert_allclose(npz["bbox"], row["bbox"], rtol=1e-6)
            assert float(npz["scales"]) == pytest.approx(row["cam_scale"], rel=1e-6)
            assert float(npz["txs"]) == pytest.approx(row["cam_tx"], rel=1e-6, abs=1e-7)
            assert float(npz["tys"]) == pytest.approx(row["cam_ty"], rel=1e-6, abs=1e-7)
            assert str(npz["species"]) == row["species"] and str(npz["family"]) == row["family"]
            source = cv2.imread(str(catalog["data_dir"] / row["image_path"]))
            decoded = cv2.imdecode(np.frombuffer(rec["jpg"], np.uint8), cv2.IMREAD_COLOR)
            np.testing.assert_array_equal(decoded, source)
    flagged = set(samples.loc[samples["flagged"], "sample_id"])
    assert seen == set(samples["sample_id"]) - flagged
    assert sum(result["counts"].values()) == len(seen)


def test_splits_hold_out_the_clade_and_never_share_a_species(catalog):
    manifest = read_manifest(catalog["out_dir"])
    assert manifest["species"]["heldout"] == ["sp_e"]
    train, val = set(manifest["species"]["train"]), set(manifest["species"]["val"])
    assert val and train and not train & val and "sp_e" not in train | val
    assert manifest["counts"]["heldout"] == 6  # sp_e is every 5th of 32 samples
    again = assign_splits(catalog["samples"], ("Felidae",), 0.25)
    assert again.equals(assign_splits(catalog["samples"], ("Felidae",), 0.25))


def test_one_training_species_splits_its_samples_so_val_is_never_empty(catalog):
    samples = catalog["samples"]
    one = samples[
        samples["species"].isin(
            ["sp_e", samples.loc[samples["family"] != "Felidae", "species"].iloc[0]]
        )
    ]
    split = assign_splits(one, ("Felidae",), 0.1)
    trainable = one["family"] != "Felidae"
    assert set(split[~trainable]) == {"heldout"}
    counts = split[trainable].value_counts()
    assert (
        counts["val"] == max(1, round(0.1 * trainable.sum()))
        and counts["train"] == trainable.sum() - counts["val"]
    )
    assert assign_splits(one, ("Felidae",), 0.1).equals(
        split
    )  # by hash of the sample id: reruns agree
    assert set(assign_splits(one, ("Felidae",), 0.0)[trainable]) == {"train"}


def test_reader_keypoints_match_the_ground_truth_camera_and_the_crop(catalog):
    examples = materialize(load_split(catalog["out_dir"], "val", input_hw=(64, 48)))
    assert len(examples) == read_manifest(catalog["out_dir"])["counts"]["val"]
    ex = examples[0]
    assert ex["img"].shape == (3, 64, 48)
    kp = ex["keypoints_2d"]
    assert float(kp[:, :2].abs().max()) <= 0.5
    # v1 camera mapped into crop coordinates reproduces the exported 2D keypoints exactly
    proj = weak_perspective_project(
        ex["keypoints_3d"][None].double(), ex["cam_crop"][None].double()
    )[0]
    np.testing.assert_allclose(proj.numpy(), kp[:, :2].numpy(), atol=1e-4)


def test_crop_image_puts_an_image_point_at_its_crop_coordinate():
    img = np.zeros((100, 100, 3), np.uint8)
    img[70, 30] = 255  # pixel centre (30.5, 70.5)
    box = np.array([40.0, 60.0, 48.0])
    crop = crop_image(img, box, (64, 48))
    xc, yc = to_crop_coords(np.array([[30.5, 70.5]]), box)[0]
    row, col = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert abs(col + 0.5 - (xc * 64 + 24)) <= 1.0 and abs(row + 0.5 - (yc * 64 + 32)) <= 1.0


def test_bad_input_is_named(catalog, tmp_path):
    bad = catalog["samples"].copy()
    bad.loc[0, "image_path"] = "images/missing.jpg"
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        export_shards(bad, catalog["data_dir"], tmp_path / "a", camera_version="v1")
    with pytest.raises(ValueError, match="needs a perspective camera"):
        export_shards(catalog["samples"], catalog["data_dir"], tmp_path / "b", camera_version="v2")
    with pytest.raises(ValueError, match="missing columns"):
        export_shards(pd.DataFrame({"sample_id": ["x"]}), catalog["data_dir"], tmp_path / "c")


def test_v2_perspective_export_and_reader(catalog, tmp_path):
    rows = catalog["samples"].iloc[:5].copy()
    rows["camera_model"] = "perspective"
    rows["fov_deg"] = 40.0
    calls = []
    result = export_shards(
        rows,
        catalog["data_dir"],
        tmp_path,
        heldout_families=(),
        val_fraction=0.0,
        progress=lambda *call: calls.append(call),
    )
    assert result["counts"] == {"train": 4, "val": 0, "heldout": 0}  # row 3 is flagged
    n = len(result["shards"])  # progress after each shard: samples so far of 4, shards of n
    assert [c[2:] for c in calls] == [(i, n) for i in range(1, n + 1)] and calls[-1][:2] == (4, 4)
    rec = next(iter(wds.WebDataset(result["shards"][0][0], shardshuffle=False, empty_check=False)))
    npz = np.load(io.BytesIO(rec["npz"]))
    assert float(npz["fovs"]) == pytest.approx(genzoo_fov_deg(40.0)) and "scales" not in npz
    assert fov_from_genzoo_deg(float(npz["fovs"])) == pytest.approx(40.0)
    np.testing.assert_allclose(npz["transls"], [0.0, 0.0, 5.0])
    ex = materialize(load_split(tmp_path, "train", input_hw=(64, 48)), limit=1)[0]
    assert torch.isfinite(ex["cam_crop"]).all() and float(ex["cam_crop"][0]) > 0


def test_cached_split_matches_the_streamed_reader_and_augments_per_access(catalog):
    streamed = materialize(load_split(catalog["out_dir"], "train", input_hw=(64, 48)))
    cached = CachedSplit(catalog["out_dir"], "train", input_hw=(64, 48))
    assert len(cached) == len(streamed)
    for a, b in zip(streamed, [cached[i] for i in range(len(cached))]):
        assert a["sample_id"] == b["sample_id"]
        assert torch.equal(a["img"], b["img"]) and torch.equal(a["keypoints_2d"], b["keypoints_2d"])
    grey = CachedSplit(
        catalog["out_dir"],
        "train",
        input_hw=(64, 48),
        augment=Augmentation(scale=0, translate=0, colour=0, grayscale=1.0),
    )
    first, second = grey[0], grey[0]
    assert torch.allclose(first["img"], second["img"])  # no geometric jitter: the same crop
    unnormalised = (
        first["img"] * torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    )  # ImageNet std only
    assert torch.allclose(
        unnormalised[0] + 0.485, unnormalised[1] + 0.456, atol=1e-5
    )  # R == G: no colour
    jittered = CachedSplit(catalog["out_dir"], "train", input_hw=(64, 48), augment=Augmentation())
    assert not torch.equal(jittered[0]["img"], jittered[0]["img"])  # each access draws new jitter


def test_rotated_crops_turn_the_keypoints_the_image_and_the_global_orientation_together(
    catalog, body_model
):
    plain = CachedSplit(catalog["out_dir"], "train", input_hw=(64, 48))[0]
    turned_split = CachedSplit(
        catalog["out_dir"],
        "train",
        input_hw=(64, 48),
        augment=Augmentation(scale=0, translate=0, colour=0, rotation=40, rotation_rate=1.0),
    )
    turned = turned_split[0]
    assert not torch.allclose(plain["keypoints_2d"], turned["keypoints_2d"])
    # the exported 3D keypoints turned with the crop still project onto the turned 2D keypoints
    proj = weak_perspective_project(
        turned["keypoints_3d"][None].double(), turned["cam_crop"][None].double()
    )[0]
    np.testing.assert_allclose(proj.numpy(), turned["keypoints_2d"][:, :2].numpy(), atol=1e-4)
    # the body posed with the turned global orientation matches them up to a translation (it turns
    # about its root joint, the camera axis passes through the origin)
    poses = turned["poses"].to(body_model.dtype)
    kp3 = body_model(
        turned["betas"][None].to(body_model.dtype), poses[None, 0], poses[None, 1:]
    ).keypoints[0]
    offset = kp3.double() - turned["keypoints_3d"].double()
    assert float((offset - offset.mean(0)).abs().max()) < 1e-4


@pytest.mark.parametrize("angle", [0.0, 35.0, -70.0])
def test_a_turned_crop_puts_an_image_point_at_its_turned_crop_coordinate(angle):
    img = np.zeros((100, 100, 3), np.uint8)
    img[70, 30] = 255  # pixel centre (30.5, 70.5)
    box = np.array([40.0, 60.0, 48.0])
    crop = crop_image(img, box, (64, 48), angle)
    xc, yc = rotate_crop_points(to_crop_coords(np.array([[30.5, 70.5]]), box), angle)[0]
    row, col = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert abs(col + 0.5 - (xc * 64 + 24)) <= 1.0 and abs(row + 0.5 - (yc * 64 + 32)) <= 1.0


def test_flipped_crops_mirror_the_image_the_keypoints_and_the_pose_together(catalog, body_model):
    plain = CachedSplit(catalog["out_dir"], "train", input_hw=(64, 48))[0]
    flipped = CachedSplit(
        catalog["out_dir"],
        "train",
        input_hw=(64, 48),
        augment=Augmentation(scale=0, translate=0, colour=0, flip=1.0),
    )[0]
    assert torch.equal(flipped["img"], plain["img"].flip(-1))
    left, right = KEYPOINT_NAMES.index("left_front_paw"), KEYPOINT_NAMES.index("right_front_paw")
    np.testing.assert_allclose(
        flipped["keypoints_2d"][left], plain["keypoints_2d"][right] * torch.tensor([-1.0, 1.0, 1.0])
    )
    # the mirrored 3D keypoints and camera still project onto the mirrored 2D keypoints
    proj = weak_perspective_project(
        flipped["keypoints_3d"][None].double(), flipped["cam_crop"][None].double()
    )[0]
    np.testing.assert_allclose(proj.numpy(), flipped["keypoints_2d"][:, :2].numpy(), atol=1e-4)
    # the body posed with the mirrored pose and the same betas is the mirror image, up to a translation
    # (it turns about its root joint); keypoints are vertex-group means, joints exact
    betas = flipped["betas"][None].to(body_model.dtype)
    a = body_model(
        betas,
        plain["poses"][None, 0].to(body_model.dtype),
        plain["poses"][None, 1:].to(body_model.dtype),
    )
    b = body_model(
        betas,
        flipped["poses"][None, 0].to(body_model.dtype),
        flipped["poses"][None, 1:].to(body_model.dtype),
    )
    offset = b.joints[0].double() - torch.from_numpy(
        mirror_points(a.joints[0].double().numpy(), JOINT_PARTNERS)
    )
    assert float((offset - offset.mean(0)).abs().max()) < 1e-6
    offset = b.keypoints[0].double() - flipped["keypoints_3d"].double()
    assert float((offset - offset.mean(0)).abs().max()) < 0.01 * float(
        np.ptp(plain["keypoints_3d"].numpy(), axis=0).max()
    )
