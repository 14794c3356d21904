import numpy as np
import pytest

from genzoo_assets.core.imagegen import make_generator
from genzoo_assets.core.imagegen.base import GenerationRequest
from genzoo_assets.core.imagegen.flux import QwenImageControlNetGenerator
from genzoo_assets.core.model_dirs import ModelDirectoryError

pytestmark = pytest.mark.slow  # a tiny Qwen-Image pipeline saved and loaded (~20 s)


def _request(seed: int, box: int = 16, size: int = 64) -> GenerationRequest:
    mask = np.zeros((size, size), bool)
    mask[box : size - box, box : size - box] = True
    canny = np.zeros((size, size), np.uint8)
    canny[1:] |= (mask[1:] != mask[:-1]).astype(np.uint8) * 255
    depth = (mask * 200).astype(np.uint8)
    rgb = np.zeros((size, size, 3), np.uint8)
    return GenerationRequest(f"s{seed}.{box}", "a brown dog", canny, depth, mask, rgb, seed)


def test_qwenimage_union_generates_with_both_controls(tiny_qwenimage_dirs):
    base, union = tiny_qwenimage_dirs
    gen = make_generator(
        "qwenimage_controlnet",
        base_model=base,
        canny_controlnet=union,
        depth_controlnet="",
        steps=2,
        resolution=None,
        max_sequence_length=64,
        batch_size=2,
        device="cpu",
    )
    assert isinstance(gen, QwenImageControlNetGenerator) and gen.name == "qwenimage_controlnet"
    assert gen.params["guidance"] == 4.0 and set(gen.model_hashes) == {"base", "controlnet_union"}
    images = gen.generate([_request(1), _request(2), _request(1)])
    assert [im.size for im in images] == [(64, 64)] * 3
    a, b, c = (np.asarray(im).astype(int) for im in images)
    assert np.abs(a - c).max() <= 2, "the same seed in another pipeline batch must agree"
    assert np.abs(a - b).mean() > 1, "different seeds must give different images"
    # Both controls reach the one union network (an inert ControlNet gives identical bytes).
    other = _request(1, box=8)
    canny_only, depth_only = _request(1), _request(1)
    canny_only.canny, depth_only.depth = other.canny, other.depth
    for changed in (canny_only, depth_only):
        image = np.asarray(gen.generate([changed])[0]).astype(int)
        assert not np.array_equal(image, a), "each control must condition the image"


def test_qwenimage_takes_one_union_location(tiny_qwenimage_dirs, tiny_flux_dirs):
    base, union = tiny_qwenimage_dirs
    with pytest.raises(ValueError, match="one ControlNet-Union location"):
        QwenImageControlNetGenerator.from_pretrained(
            base, canny_controlnet=union, depth_controlnet=tiny_flux_dirs.depth
        )
    with pytest.raises(ModelDirectoryError, match="expected QwenImageControlNetModel"):
        QwenImageControlNetGenerator.from_pretrained(base, tiny_flux_dirs.canny)
    with pytest.raises(ModelDirectoryError, match=r"expected a QwenImage\* pipeline"):
        QwenImageControlNetGenerator.from_pretrained(tiny_flux_dirs.base, union)
