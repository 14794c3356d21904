import numpy as np
import pytest

from genzoo_assets.core.imagegen.alignment import DEFAULT_THRESHOLD, alignment_score, edge_f1
from genzoo_assets.core.imagegen.render_composite import RenderCompositeGenerator
from genzoo_assets_tests.core.imagegen.toy_animal import toy_request


def test_edge_f1_tolerance():
    a = np.zeros((100, 100), bool)
    a[50, 10:90] = True
    assert edge_f1(a, a) == pytest.approx(1.0)
    assert edge_f1(np.roll(a, 1, 0), a) == pytest.approx(1.0)  # within tolerance
    assert edge_f1(np.roll(a, 20, 0), a) == 0.0
    assert edge_f1(np.zeros_like(a), a) == 0.0


@pytest.fixture(scope="module")
def pairs():
    gen = RenderCompositeGenerator(subdivisions=1)
    cases = [("zebra", 40), ("golden_retriever", 60), ("african_elephant", 120), ("red_fox", -70)]
    out = []
    for i, (sp, yaw) in enumerate(cases):
        req = toy_request(11 + i, sp, f"a {sp}", yaw=yaw)
        out.append((req, gen.generate([req])[0]))
    gen.close()
    return out


def test_aligned_pairs_pass_and_shifted_or_mirrored_controls_fail(pairs):
    for req, image in pairs:
        good = alignment_score(image, req.canny, req.mask)
        shift = req.canny.shape[1] // 10
        shifted = alignment_score(image, np.roll(req.canny, shift, 1), np.roll(req.mask, shift, 1))
        mirrored = alignment_score(image, req.canny[:, ::-1], req.mask[:, ::-1])
        assert set(good) == {"edge_f1", "mask_iou", "alignment_score"}
        assert 0 <= shifted["alignment_score"] <= good["alignment_score"] <= 1
        assert good["alignment_score"] >= DEFAULT_THRESHOLD, (req.sample_id, good)
        for bad in (shifted, mirrored):
            assert bad["alignment_score"] < DEFAULT_THRESHOLD, (req.sample_id, bad)
            assert good["alignment_score"] - bad["alignment_score"] > 0.2
            assert bad["edge_f1"] < good["edge_f1"] and bad["mask_iou"] < good["mask_iou"]


def test_bad_sizes_named():
    with pytest.raises(ValueError, match="differ in size"):
        alignment_score(
            np.zeros((10, 10, 3), np.uint8), np.zeros((12, 12), np.uint8), np.zeros((12, 12), bool)
        )
