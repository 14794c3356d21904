import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from genzoo_assets.core.body.rotations import matrix_to_axis_angle
from genzoo_assets.core.checks import image_resolution
from genzoo_assets.core.errors import is_input_error
from genzoo_assets.core.imagegen.flux import FluxControlNetGenerator
from genzoo_assets.core.imagegen.partition import (
    OUTPUT_COLUMNS,
    BlankImageError,
    blank_reason,
    generate_partition,
)
from genzoo_assets.core.imagegen.render_composite import RenderCompositeGenerator
from genzoo_assets.core.render.renderer import ControlRenderer
from genzoo_assets.core.sampling.camera_model import Camera, view_rotation
from genzoo_assets.core.text_limits import TextTooLongError

SIZE = 96


def _write_partition(data_dir, bm, n=3, species="zebra"):
    rows = []
    renderer = ControlRenderer(SIZE, subdivisions=1)
    rng = np.random.default_rng(0)
    for i in range(n):
        sid = f"{species}.000.{i:05d}"
        betas = rng.normal(0, 0.5, bm.num_betas)
        rot = view_rotation(40.0 + 50 * i, 10.0) @ bm.canonical_rotation
        go = (
            matrix_to_axis_angle(torch.tensor(rot, dtype=torch.float32)[None])[0]
            .numpy()
            .astype(np.float64)
        )
        pose = np.zeros(3 * (bm.num_joints - 1))
        transl = np.array([0.0, 0.05, 3.0])
        out = bm(betas[None], go[None], pose[None], transl[None])
        maps = renderer.render(
            out.vertices[0].detach().double().numpy(),
            np.asarray(bm.faces),
            Camera("perspective", SIZE, fov_deg=40.0),
        )
        stem = f"renders/{species}/000/{sid}"
        (data_dir / stem).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(maps.rgb).save(data_dir / f"{stem}.rgb.png")
        Image.fromarray(maps.depth_u8).save(data_dir / f"{stem}.depth.png")
        Image.fromarray(maps.canny).save(data_dir / f"{stem}.canny.png")
        Image.fromarray(maps.mask.astype(np.uint8) * 255).save(data_dir / f"{stem}.mask.png")
        rows.append(
            {
                "sample_id": sid,
                "species": species,
                "shard": "000",
                "index": i,
                "prompt": f"a {species} standing",
                "rgb_path": f"{stem}.rgb.png",
                "depth_path": f"{stem}.depth.png",
                "canny_path": f"{stem}.canny.png",
                "mask_path": f"{stem}.mask.png",
                "betas": betas.tolist(),
                "global_orient": go.tolist(),
                "body_pose": pose.tolist(),
                "transl": transl.tolist(),
                "camera_model": "perspective",
                "resolution": SIZE,
                "fov_deg": 40.0,
                "cam_scale": None,
                "cam_tx": None,
                "cam_ty": None,
                "family": "Equidae",
            }
        )
    renderer.close()
    return pd.DataFrame(rows)


def _files(data_dir):
    return (
        sorted(p for p in (data_dir / "images").rglob("*") if p.is_file())
        if (data_dir / "images").exists()
        else []
    )


def test_render_composite_partition_writes_scored_images(tmp_path, body_model):
    rows = _write_partition(tmp_path, body_model)
    gen = RenderCompositeGenerator(subdivisions=1)
    seen = []
    df = generate_partition(
        rows,
        gen,
        tmp_path,
        batch_size=2,
        progress=lambda d, t: seen.append((d, t)),
        body_model=body_model,
    )
    assert list(df.columns) == list(OUTPUT_COLUMNS) and len(df) == 3
    assert seen[-1] == (3, 3)
    assert [p.name for p in _files(tmp_path)] == [f"zebra.000.{i:05d}.jpg" for i in range(3)]
    for _, r in df.iterrows():
        with Image.open(tmp_path / r["image_path"]) as im:
            assert im.size == (SIZE, SIZE) and im.format == "JPEG"
        assert not r["flagged"] and r["alignment_score"] >= 0.5
        assert r["image_backend"] == "render_composite" and "coat_palettes" in json.loads(
            r["model_hashes"]
        )
        assert json.loads(r["provenance"])["stage"] == "images"
    first = [(tmp_path / p).read_bytes() for p in df["image_path"]]
    again = generate_partition(rows, gen, tmp_path, body_model=body_model)
    assert [(tmp_path / p).read_bytes() for p in again["image_path"]] == first, (
        "a rerun reproduces the bytes"
    )
    assert again["image_seed"].tolist() == df["image_seed"].tolist()
    # Without the body model the backend shades the control normal map instead (still aligned).
    flat = generate_partition(rows, gen, tmp_path)
    assert not flat["flagged"].any()
    gen.close()


class _AtAnotherSize:
    """A real generator whose images come back at another size, as FLUX's do at GENZOO_RESOLUTION."""

    def __init__(self, inner, size):
        self.inner, self.size = inner, size
        self.name, self.model_hashes, self.params = inner.name, inner.model_hashes, inner.params

    def generate(self, batch):
        return [im.resize((self.size, self.size)) for im in self.inner.generate(batch)]


def test_images_are_stored_at_the_control_resolution(tmp_path, body_model):
    rows = _write_partition(tmp_path, body_model, n=2)
    df = generate_partition(
        rows, _AtAnotherSize(RenderCompositeGenerator(subdivisions=1), 2 * SIZE), tmp_path
    )
    outcome = image_resolution(df, dict.fromkeys(df["sample_id"], SIZE), tmp_path)
    assert outcome.passed, (
        outcome.metadata
    )  # keypoints and bbox are in control pixels: so is the image
    assert not df["flagged"].any()


class _FailsMidBatch:
    """Delegates to a real generator, then raises half-way through its second batch."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0
        self.name, self.model_hashes, self.params = inner.name, inner.model_hashes, inner.params

    def generate(self, batch):
        self.calls += 1
        if self.calls == 2:
            self.inner.generate(batch[:1])
            raise RuntimeError("injected failure")
        return self.inner.generate(batch)


def test_failure_mid_partition_leaves_no_image_files(tmp_path, body_model):
    rows = _write_partition(tmp_path, body_model, n=4)
    with pytest.raises(RuntimeError, match="injected failure"):
        generate_partition(
            rows, _FailsMidBatch(RenderCompositeGenerator(subdivisions=1)), tmp_path, batch_size=2
        )
    assert _files(tmp_path) == []


class _OomOnFirstBatch:
    """A model loaded once (``loads``) whose first batch runs out of CUDA memory."""

    loads = 0

    def __init__(self, inner):
        type(self).loads += 1
        self.inner, self.sizes = inner, []
        self.name, self.model_hashes, self.params = inner.name, inner.model_hashes, inner.params

    def generate(self, batch):
        self.sizes.append(len(batch))
        if len(self.sizes) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
        return self.inner.generate(batch)


def test_an_oom_on_the_first_batch_is_retried_at_half_the_batch_with_the_model_loaded_once(
    tmp_path, body_model
):
    rows = _write_partition(tmp_path, body_model, n=4)
    generator = _OomOnFirstBatch(RenderCompositeGenerator(subdivisions=1))
    df = generate_partition(rows, generator, tmp_path, batch_size=4)
    assert generator.sizes == [4, 2, 2] and _OomOnFirstBatch.loads == 1
    assert df["sample_id"].tolist() == rows["sample_id"].tolist() and len(_files(tmp_path)) == 4


@pytest.mark.slow  # tiny FLUX
def test_flux_partition_on_tiny_models_and_a_failing_pipeline(tmp_path, body_model, tiny_flux_dirs):
    rows = _write_partition(tmp_path, body_model, n=3)
    gen = FluxControlNetGenerator.from_pretrained(
        tiny_flux_dirs.base,
        tiny_flux_dirs.canny,
        tiny_flux_dirs.depth,
        steps=2,
        resolution=None,
        batch_size=2,
        max_sequence_length=64,
    )
    df = generate_partition(rows, gen, tmp_path, batch_size=3)
    assert len(_files(tmp_path)) == 3
    r = df.iloc[0]
    assert (
        r["image_backend"] == "flux_controlnet"
        and r["steps"] == 2
        and list(r["cond_scales"]) == [0.2, 0.65]
    )
    assert set(json.loads(r["model_hashes"])) == {"base", "canny_controlnet", "depth_controlnet"}
    assert df["flagged"].dtype == bool and df["alignment_score"].between(0, 1).all()

    out = tmp_path / "second"
    rows2 = _write_partition(out, body_model, n=3, species="horse")
    calls = {"n": 0}

    def explode(module, args):
        calls["n"] += 1
        if calls["n"] > gen.steps:  # inside the second pipeline call of the partition
            raise RuntimeError("transformer failed")

    handle = gen.pipeline.transformer.register_forward_pre_hook(explode)
    try:
        with pytest.raises(RuntimeError, match="transformer failed"):
            generate_partition(rows2, gen, out, batch_size=2)
    finally:
        handle.remove()
    assert _files(out) == []


class _BlankFor:
    """Returns a black image for the samples in ``blank`` and the inner generator's for the rest."""

    def __init__(self, inner, blank):
        self.inner, self.blank = inner, set(blank)
        self.name, self.model_hashes, self.params = inner.name, inner.model_hashes, inner.params

    def generate(self, batch):
        images = self.inner.generate(batch)
        return [
            Image.new("RGB", im.size) if req.sample_id in self.blank else im
            for req, im in zip(batch, images)
        ]


def test_a_blank_image_fails_its_sample_only(tmp_path, body_model):
    rows = _write_partition(tmp_path, body_model, n=3)
    blank_id = rows["sample_id"].iloc[1]
    seen = []
    df = generate_partition(
        rows,
        _BlankFor(RenderCompositeGenerator(subdivisions=1), [blank_id]),
        tmp_path,
        batch_size=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert df["sample_id"].tolist() == [s for s in rows["sample_id"] if s != blank_id]
    assert df.attrs["blank_samples"] == {blank_id: "a single colour (0)"}
    assert [p.stem for p in _files(tmp_path)] == df["sample_id"].tolist()
    assert seen[-1] == (3, 3)


def test_a_partition_of_blank_images_fails_once_as_an_input_error(tmp_path, body_model):
    rows = _write_partition(tmp_path, body_model, n=2)
    generator = _BlankFor(RenderCompositeGenerator(subdivisions=1), rows["sample_id"])
    with pytest.raises(BlankImageError, match="every one of the 2 samples") as caught:
        generate_partition(rows, generator, tmp_path)
    assert is_input_error(caught.value) and "\n" not in str(caught.value)
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    "pixels, reason",
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.full((4, 4, 3), 255, np.uint8), "a single colour (255)"),
        (np.eye(4, dtype=np.uint8)[..., None].repeat(3, -1), None),
    ],
)
def test_blank_reason(pixels, reason):
    image = Image.fromarray(pixels) if pixels.size else Image.new("RGB", (0, 0))
    assert blank_reason(image) == reason


def test_a_prompt_over_the_limit_is_refused_naming_its_sample(tmp_path, body_model):
    rows = _write_partition(tmp_path, body_model, n=1)
    rows.loc[0, "prompt"] = "a zebra " * 1000
    with pytest.raises(TextTooLongError, match=f"sample {rows['sample_id'][0]}: prompt is 8000"):
        generate_partition(rows, RenderCompositeGenerator(subdivisions=1), tmp_path)
    assert _files(tmp_path) == []
