"""Each data check passes on what the stages write and fails on a corrupted copy of it."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from genzoo_assets.core.body import procedural_body_model
from genzoo_assets.core.checks import (
    SampleIdMismatchError,
    backend_counts,
    betas_within_bound,
    fallback_rate,
    image_resolution,
    keypoint_reprojection,
    require_same_sample_ids,
)
from genzoo_assets.core.render.partition import render_partition
from genzoo_assets.core.render.renderer import ControlRenderer
from genzoo_assets.core.sampling.partition import sample_shapes_partition
from genzoo_assets.core.sampling.shapes import make_shape_sampler
from genzoo_assets.core.text import is_fallback
from genzoo_assets.core.text.fallback import fallback_name
from genzoo_assets_tests.core.render.conftest import make_pose_df

RES = 64


@pytest.fixture(scope="module")
def procedural():
    return procedural_body_model()


@pytest.fixture(scope="module")
def rendered(procedural, tmp_path_factory):
    """shape ⋈ pose ⋈ control_renders rows as the render stage writes them, at RES px."""
    data_dir = tmp_path_factory.mktemp("data")
    pose_df = make_pose_df(procedural)
    with ControlRenderer(RES, subdivisions=0) as renderer:
        renders = render_partition(pose_df, procedural, data_dir, resolution=RES, renderer=renderer)
    keep = [c for c in renders.columns if c == "sample_id" or c not in pose_df.columns]
    return renders[keep].merge(pose_df, on="sample_id")


def test_betas_within_the_samplers_bound(procedural):
    sampler = make_shape_sampler(
        "prior", procedural, std_scale=20.0
    )  # wide: many draws hit the clip
    df = sample_shapes_partition(
        {
            "species": "panthera-leo",
            "common_name": "Lion",
            "family": "Felidae",
            "order": "Carnivora",
        },
        "000",
        range(32),
        sampler,
    )
    assert sampler.beta_limit == 5.0
    good = betas_within_bound(df["sample_id"], df["betas"], sampler.beta_limit)
    assert good.passed and good.metadata["abs_max"] == pytest.approx(5.0)

    leaked = [
        np.asarray(b) * (1.2 if i == 3 else 1.0) for i, b in enumerate(df["betas"])
    ]  # the clip forgotten
    bad = betas_within_bound(df["sample_id"], leaked, sampler.beta_limit)
    assert not bad.passed and bad.metadata["failing_ids"] == [df["sample_id"][3]]
    assert bad.metadata["abs_max"] == pytest.approx(6.0)

    nan = [
        np.where(np.arange(len(b)) == 0, np.nan, b) if i == 5 else b
        for i, b in enumerate(df["betas"])
    ]
    assert betas_within_bound(df["sample_id"], nan, sampler.beta_limit).metadata["failing_ids"] == [
        df["sample_id"][5]
    ]


def test_keypoints_reproject_from_the_stored_parameters(rendered, procedural):
    good = keypoint_reprojection(rendered, procedural)
    assert good.passed and good.metadata["max_error_px"] < 1e-3

    shifted = rendered.copy()
    kp = np.asarray(shifted.at[1, "keypoints_2d"], dtype=np.float64).copy()
    kp[6] += 0.7  # one keypoint's y, 0.7 px off
    shifted.at[1, "keypoints_2d"] = kp.tolist()
    bad = keypoint_reprojection(shifted, procedural)
    assert not bad.passed and bad.metadata["failing_ids"] == [rendered["sample_id"][1]]
    assert bad.metadata["max_error_px"] == pytest.approx(0.7, abs=1e-3)

    moved = rendered.copy()  # parameters changed after rendering
    moved.at[2, "transl"] = (np.asarray(moved.at[2, "transl"]) + [0.02, 0.0, 0.0]).tolist()
    assert keypoint_reprojection(moved, procedural).metadata["failing_ids"] == [
        rendered["sample_id"][2]
    ]

    other_frame = rendered.assign(render_resolution=2 * RES)  # labels read in another pixel frame
    assert keypoint_reprojection(other_frame, procedural).metadata["failing"] == len(rendered)


def test_images_at_the_control_resolution(tmp_path):
    ids = [f"lion.000.{i:05d}" for i in range(3)]
    paths = [f"images/lion/000/{sid}.jpg" for sid in ids]
    (tmp_path / "images/lion/000").mkdir(parents=True)
    for i, rel in enumerate(paths):
        Image.new("RGB", (96, 96) if i == 1 else (RES, RES)).save(
            tmp_path / rel
        )  # 1: the generator's size
    df = pd.DataFrame({"sample_id": ids, "image_path": paths})
    expected = dict.fromkeys(ids, RES)
    bad = image_resolution(df, expected, tmp_path)
    assert (
        not bad.passed
        and bad.metadata["failing_ids"] == [ids[1]]
        and bad.metadata["failing_sizes"] == [[96, 96]]
    )
    assert image_resolution(df.drop(index=1), expected, tmp_path).passed
    (tmp_path / paths[0]).unlink()
    assert image_resolution(df.drop(index=1), expected, tmp_path).metadata["failing_ids"] == [
        ids[0]
    ]


def test_fallback_rate_under_the_ceiling_and_backend_counts():
    backends = ["vlm:molmo"] * 9 + [fallback_name("geometric", "vlm:molmo")]
    ids = [f"s{i}" for i in range(10)]
    fell_back = [is_fallback(b) for b in backends]
    assert fell_back == [False] * 9 + [True]
    assert fallback_rate(ids, fell_back, 0.1).passed
    bad = fallback_rate(ids, fell_back, 0.05)
    assert (
        not bad.passed
        and bad.metadata["fallback_ids"] == ["s9"]
        and bad.metadata["fallback_rate"] == 0.1
    )
    assert backend_counts(backends) == {"vlm:molmo": 9, "geometric(fallback:vlm:molmo)": 1}
    assert not is_fallback("llm:qwen+orientation") and is_fallback("template(fallback:llm:qwen)")


def test_sample_id_sets_must_be_equal():
    require_same_sample_ids({"a": ["x", "y"], "b": ["y", "x"]}, "here")
    with pytest.raises(
        SampleIdMismatchError,
        match=r"species=lion shard=000: .*captions lacks 1 \(lion.000.00002\)",
    ):
        require_same_sample_ids(
            {"prompts": ["lion.000.00001", "lion.000.00002"], "captions": ["lion.000.00001"]},
            "species=lion shard=000",
        )
