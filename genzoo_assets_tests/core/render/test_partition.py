import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from genzoo_assets.core.render.contact_sheet import contact_sheet, write_contact_sheet
from genzoo_assets.core.render.partition import OUTPUT_COLUMNS, camera_from_row, render_partition
from genzoo_assets.core.render.renderer import ControlRenderer
from genzoo_assets.core.sampling.camera_model import project

from .conftest import SAMPLED_RES, make_pose_df

RES = 256
TEST_OUTPUT = Path(__file__).resolve().parents[3] / "test-output" / "render"


@pytest.fixture(scope="module")
def rendered(body_model, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    pose_df = make_pose_df(body_model)
    calls = []
    with ControlRenderer(RES) as renderer:
        out = render_partition(
            pose_df,
            body_model,
            data_dir,
            resolution=RES,
            renderer=renderer,
            progress=lambda done, total: calls.append((done, total)),
            batch_size=3,
        )
    return pose_df, out, data_dir, calls


def _mask(data_dir, row):
    return cv2.imread(str(data_dir / row["mask_path"]), cv2.IMREAD_UNCHANGED) > 0


def test_rows_files_and_progress(rendered):
    pose_df, out, data_dir, calls = rendered
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert len(out) == len(pose_df) and calls[-1] == (len(pose_df), len(pose_df))
    for _, row in out.iterrows():
        for key in ("rgb_path", "depth_path", "depth_metric_path", "canny_path", "mask_path"):
            rel = row[key]
            assert not Path(rel).is_absolute() and rel.startswith(
                f"renders/{row['species']}/{row['shard']}/"
            )
            assert (data_dir / rel).is_file()
        rgb = cv2.imread(str(data_dir / row["rgb_path"]))
        assert rgb.shape == (RES, RES, 3)
        depth = np.load(data_dir / row["depth_metric_path"])
        mask = _mask(data_dir, row)
        assert depth.dtype == np.float32 and ((depth > 0) == mask).all()
        assert row["mask_area"] == mask.sum() > 500
        x, y, w, h = row["bbox"]
        rows_, cols_ = np.nonzero(mask)
        assert (x, y, w, h) == (
            cols_.min(),
            rows_.min(),
            cols_.max() + 1 - cols_.min(),
            rows_.max() + 1 - rows_.min(),
        )
        assert (
            len(row["keypoints_2d"]) == 52
            and len(row["joints_2d"]) == 70
            and len(row["joints_vis"]) == 35
        )
    assert not list(data_dir.rglob(".*.tmp"))


def test_keypoints_are_projections_of_stored_3d(rendered):
    pose_df, out, _, _ = rendered
    for (_, src), (_, row) in zip(pose_df.iterrows(), out.iterrows()):
        camera = camera_from_row(src, row["render_resolution"])
        for key3, key2, n in (("keypoints_3d", "keypoints_2d", 26), ("joints_3d", "joints_2d", 35)):
            expected = project(np.reshape(src[key3], (n, 3)), camera)
            np.testing.assert_allclose(np.reshape(row[key2], (n, 2)), expected, atol=1e-6)
        # Rendering below the sampled resolution scales every coordinate by the same factor.
        sampled = project(np.reshape(src["keypoints_3d"], (26, 3)), camera_from_row(src))
        np.testing.assert_allclose(
            np.reshape(row["keypoints_2d"], (26, 2)), sampled * RES / SAMPLED_RES, atol=0.5
        )


def test_visible_keypoints_fall_inside_mask(rendered):
    """Visible keypoints lie on the silhouette. The procedural model's tip keypoints (ear tips,
    nose, tail end) are apex vertices, i.e. exactly on the rim, where a pixel-centre mask keeps
    them about half the time; so: >= 95% inside the mask grown by one pixel, none farther than
    1.5 px, and most strictly inside."""
    _, out, data_dir, _ = rendered
    strict, near, visible, hidden, worst = 0, 0, 0, 0, 0.0
    for _, row in out.iterrows():
        mask = _mask(data_dir, row)
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
        kp = np.reshape(row["keypoints_2d"], (26, 2))
        vis = np.asarray(row["keypoints_vis"])
        for (u, v), flag in zip(kp, vis):
            if flag:
                visible += 1
                strict += bool(mask[int(v), int(u)])
                near += bool(grown[int(v), int(u)])
                worst = max(worst, float(dist[int(v), int(u)]))
        hidden += int((~vis).sum())
    assert visible >= 60 and near / visible >= 0.95 and worst <= 1.5, (near, visible, worst)
    assert strict / visible >= 0.9, (strict, visible)
    assert hidden > 0  # side views hide the far legs: visibility is a real depth test


def test_contact_sheet(rendered):
    _, out, data_dir, _ = rendered
    sheet = contact_sheet(out, data_dir, max_samples=4, tile=128)
    assert sheet.size == (4 * 128, 4 * 128)
    path = write_contact_sheet(out, data_dir)
    assert path == data_dir / "previews" / "control_renders" / "procedural_dog__000.png"
    assert path.is_file()
    named = write_contact_sheet(out, data_dir, "procedural_dog__000", max_samples=2)
    assert named == path and named.is_file()
    TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
    contact_sheet(out, data_dir, max_samples=4, tile=256).save(
        TEST_OUTPUT / "contact_sheet_procedural.png"
    )


def test_bad_input_is_named(body_model, tmp_path):
    pose_df = make_pose_df(body_model).iloc[:1]
    with pytest.raises(ValueError, match="lacks columns.*joints_3d"):
        render_partition(pose_df.drop(columns=["joints_3d"]), body_model, tmp_path, resolution=64)
    bad = pose_df.copy()
    bad.at[bad.index[0], "keypoints_3d"] = (np.asarray(bad["keypoints_3d"].iloc[0]) + 0.2).tolist()
    with pytest.raises(ValueError, match="procedural_dog.000.00000: stored keypoints_3d differ"):
        render_partition(bad, body_model, tmp_path, resolution=64)
    bad = pose_df.copy()
    bad["fov_deg"] = 0.0
    with pytest.raises(ValueError, match="procedural_dog.000.00000: bad camera fields"):
        render_partition(bad, body_model, tmp_path, resolution=64)


def test_wrong_betas_length_is_named(body_model, tmp_path):
    bad = make_pose_df(body_model).iloc[:1].copy()
    bad.at[bad.index[0], "betas"] = [0.0] * (body_model.num_betas + 1)
    with pytest.raises(ValueError, match=r"procedural_dog.000.00000: betas has \d+ values"):
        render_partition(bad, body_model, tmp_path, resolution=64)


def test_subdivisions_change_only_the_silhouette_detail(body_model, tmp_path):
    """Fewer subdivisions: the same sample, its subdivision count in provenance, masks within a few %."""
    pose_df = make_pose_df(body_model).iloc[:2]
    coarse = render_partition(pose_df, body_model, tmp_path / "s0", resolution=128, subdivisions=0)
    fine = render_partition(pose_df, body_model, tmp_path / "s2", resolution=128, subdivisions=2)
    for (_, a), (_, b) in zip(coarse.iterrows(), fine.iterrows()):
        assert json.loads(a["provenance"])["subdivisions"] == 0
        assert json.loads(b["provenance"])["subdivisions"] == 2
        assert (
            a["keypoints_2d"] == b["keypoints_2d"]
        )  # ground truth comes from the body model, not the mesh drawn
        assert abs(a["mask_area"] - b["mask_area"]) <= 0.05 * b["mask_area"]
