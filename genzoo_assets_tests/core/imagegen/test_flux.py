import json
import shutil

import numpy as np
import pytest

from genzoo_assets.core.imagegen.base import GenerationRequest, ImageGenerator
from genzoo_assets.core.imagegen.flux import FluxControlNetGenerator
from genzoo_assets.core.model_dirs import ModelDirectoryError

pytestmark = pytest.mark.slow  # tiny FLUX pipelines (~25 s)


def _request(seed: int, size: int = 64, sample_id: str = "s") -> GenerationRequest:
    yy, xx = np.mgrid[:size, :size]
    mask = (xx - size / 2) ** 2 / 400 + (yy - size / 2) ** 2 / 150 < 1
    canny = np.zeros((size, size), np.uint8)
    canny[1:] |= (mask[1:] != mask[:-1]).astype(np.uint8) * 255
    depth = (mask * 200).astype(np.uint8)
    rgb = np.stack([mask * 128] * 3, -1).astype(np.uint8)
    return GenerationRequest(sample_id, "a brown dog", canny, depth, mask, rgb, seed)


def _gen(dirs, **kw):
    kw.setdefault("steps", 2)
    kw.setdefault("resolution", None)
    kw.setdefault("max_sequence_length", 64)
    return FluxControlNetGenerator.from_pretrained(dirs.base, dirs.canny, dirs.depth, **kw)


def test_tiny_flux_end_to_end_size_and_seed_determinism(tiny_flux_dirs):
    gen = _gen(tiny_flux_dirs, batch_size=2)
    assert isinstance(gen, ImageGenerator)
    reqs = [_request(1), _request(2), _request(1)]
    images = gen.generate(reqs)
    assert [im.size for im in images] == [(64, 64)] * 3
    a, b, c = (np.asarray(im) for im in images)
    # Same seed in another pipeline batch: equal up to float batch-size effects.
    assert np.abs(a.astype(int) - c).max() <= 2
    assert np.abs(a.astype(int) - b).mean() > 5, "different seeds must give different images"
    rerun = [np.asarray(im) for im in gen.generate(reqs)]
    assert all(np.array_equal(x, y) for x, y in zip(rerun, (a, b, c))), (
        "a rerun must reproduce the bytes"
    )
    assert gen.params["steps"] == 2 and gen.params["cond_scales"] == [0.2, 0.65]
    assert set(gen.model_hashes) == {"base", "canny_controlnet", "depth_controlnet"}
    assert all(h.startswith("sha256:") for h in gen.model_hashes.values())
    again = _gen(tiny_flux_dirs, batch_size=1).generate([_request(2)])[0]
    assert np.abs(np.asarray(again).astype(int) - b).max() <= 2
    big = _gen(tiny_flux_dirs, resolution=96).generate([_request(3)])[0]
    assert big.size == (96, 96)


def _copy(dirs, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(dirs.base, base)
    return base


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda base, d: shutil.rmtree(base / "transformer"), "no transformer/ sub-folder"),
        (lambda base, d: (base / "model_index.json").unlink(), "has no model_index.json"),
        (lambda base, d: next((base / "vae").glob("*.safetensors")).unlink(), "no weight file"),
        (
            lambda base, d: (base / "model_index.json").write_text(
                json.dumps({"_class_name": "StableDiffusionPipeline"})
            ),
            r"expected a Flux\* pipeline",
        ),
    ],
)
def test_broken_base_folder_names_what_is_missing(tiny_flux_dirs, tmp_path, breakage, expected):
    base = _copy(tiny_flux_dirs, tmp_path)
    breakage(base, tiny_flux_dirs)
    with pytest.raises(ModelDirectoryError, match=expected) as info:
        FluxControlNetGenerator.from_pretrained(base, tiny_flux_dirs.canny, tiny_flux_dirs.depth)
    assert "base" in str(info.value)


def test_wrong_or_missing_controlnet_fails_before_any_sample(tiny_flux_dirs, tmp_path):
    with pytest.raises(
        ModelDirectoryError, match=r"depth_controlnet model folder .*nope does not exist"
    ):
        FluxControlNetGenerator.from_pretrained(
            tiny_flux_dirs.base, tiny_flux_dirs.canny, tmp_path / "nope"
        )
    with pytest.raises(
        ModelDirectoryError,
        match=r"canny_controlnet .*holds a FluxTransformer2DModel, expected FluxControlNetModel",
    ):
        FluxControlNetGenerator.from_pretrained(
            tiny_flux_dirs.base, tiny_flux_dirs.base / "transformer", tiny_flux_dirs.depth
        )
    with pytest.raises(ModelDirectoryError, match="not-an-owner/not-a-model"):
        FluxControlNetGenerator.from_pretrained(
            "not-an-owner/not-a-model", tiny_flux_dirs.canny, tiny_flux_dirs.depth
        )


def test_make_generator_by_name(tiny_flux_dirs):
    from genzoo_assets.core.imagegen import make_generator

    gen = make_generator(
        "flux_controlnet",
        base_model=tiny_flux_dirs.base,
        canny_controlnet=tiny_flux_dirs.canny,
        depth_controlnet=tiny_flux_dirs.depth,
        steps=1,
    )
    assert (
        gen.name == "flux_controlnet"
        and gen.params["resolution"] == 1024
        and gen.params["guidance"] == 3.5
    )
    assert make_generator("render_composite").name == "render_composite"
    with pytest.raises(ValueError, match="unknown image generator 'nope'"):
        make_generator("nope")
    with pytest.raises(ModelDirectoryError, match="expected a StableDiffusion3\\* pipeline"):
        make_generator(
            "sd3_controlnet",
            base_model=tiny_flux_dirs.base,
            canny_controlnet=tiny_flux_dirs.canny,
            depth_controlnet=tiny_flux_dirs.depth,
        )


def test_two_partitions_in_one_process_load_the_pipeline_once(tiny_flux_dirs, tmp_path):
    from genzoo_assets.core import residency

    residency.release_all()
    before = residency.loads
    first = _gen(tiny_flux_dirs, batch_size=1)
    second = _gen(tiny_flux_dirs, batch_size=2)  # a later partition: a new generator object
    a = first.generate([_request(1)])[0]
    b = second.generate([_request(1)])[0]
    assert residency.loads == before + 1 and first.pipeline is second.pipeline
    assert np.abs(np.asarray(a).astype(int) - np.asarray(b)).max() <= 2
    # Another folder (a copy of the same weights) or another load-time option is another model.
    copy = _copy(tiny_flux_dirs, tmp_path)
    other = FluxControlNetGenerator.from_pretrained(
        copy, tiny_flux_dirs.canny, tiny_flux_dirs.depth, steps=1, max_sequence_length=64
    )
    assert other.pipeline is not first.pipeline and residency.loads == before + 2
    assert first.residency_key != _gen(tiny_flux_dirs, speed={"compile": "regional"}).residency_key
    residency.release_all()


def test_speed_options_are_recorded_in_params(tiny_flux_dirs):
    gen = _gen(tiny_flux_dirs, speed={"vae_tiling": True})
    assert gen.params["speed"] == {
        "reproduce_notebook": False,
        "compile": "off",
        "fp8_storage": False,
        "vae_tiling": True,
        "lossy": True,
    }
    with pytest.raises(ValueError, match="reproduce_notebook=True"):
        _gen(tiny_flux_dirs, speed={"reproduce_notebook": True, "vae_tiling": True})


def test_fp8_storage_is_lossy_but_close_and_the_notebook_only_reorders_floats(tiny_flux_dirs):
    from genzoo_assets.core import residency

    default = np.asarray(_gen(tiny_flux_dirs).generate([_request(4)])[0]).astype(int)
    notebook = _gen(tiny_flux_dirs, speed={"reproduce_notebook": True}).generate([_request(4)])[0]
    assert np.abs(np.asarray(notebook) - default).max() <= 2, "math SDPA: same values, new order"
    fp8 = _gen(tiny_flux_dirs, speed={"fp8_storage": True})
    image = np.asarray(fp8.generate([_request(4)])[0]).astype(int)
    assert fp8.residency_key in residency.held()
    assert 0 < np.abs(image - default).mean() < 10, "float8 weights round every weight a little"
    residency.release_all()
