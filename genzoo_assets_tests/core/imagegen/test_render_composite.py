import numpy as np
import pytest

from genzoo_assets.core.imagegen.base import ImageGenerator
from genzoo_assets.core.imagegen.coats import match_rule
from genzoo_assets.core.imagegen.render_composite import RenderCompositeGenerator
from genzoo_assets_tests.core.imagegen.toy_animal import toy_request


@pytest.fixture(scope="module")
def gen():
    g = RenderCompositeGenerator(subdivisions=1)
    yield g
    g.close()


def _fg_stats(image, mask):
    px = np.asarray(image, np.float64)[mask]
    return px.mean(0), px.std(0).mean()


def test_deterministic_per_seed_and_sized_like_the_controls(gen):
    assert isinstance(gen, ImageGenerator)
    req = toy_request(3, "tiger", "a tiger")
    a, b = gen.generate([req, req])
    assert a.size == (128, 128) and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    other = gen.generate([toy_request(4, "tiger", "a tiger")])[0]
    assert (
        np.abs(np.asarray(a, int) - np.asarray(other)).mean() > 10
    )  # new seed: new light, scene, coat draw


def test_species_get_different_coats_and_the_animal_stands_out(gen):
    reqs = {
        sp: toy_request(7, sp, f"a {sp}")
        for sp in ("zebra", "african_elephant", "golden_retriever")
    }
    imgs = {sp: gen.generate([r])[0] for sp, r in reqs.items()}
    stats = {sp: _fg_stats(imgs[sp], reqs[sp].mask) for sp in reqs}
    assert stats["zebra"][1] > 1.5 * stats["african_elephant"][1], (
        "stripes make a zebra's coat high-contrast"
    )
    gold, grey = stats["golden_retriever"][0], stats["african_elephant"][0]
    assert gold[0] - gold[2] > 30 and abs(grey[0] - grey[2]) < 25, "golden is warm, elephant grey"
    for sp, req in reqs.items():  # visible: the silhouette differs from its surroundings
        ring = np.zeros_like(req.mask)
        ys, xs = np.nonzero(req.mask)
        ring[max(ys.min() - 6, 0) : ys.max() + 6, max(xs.min() - 6, 0) : xs.max() + 6] = True
        ring &= ~req.mask
        inside = np.asarray(imgs[sp], float)[req.mask].mean(0)
        outside = np.asarray(imgs[sp], float)[ring].mean(0)
        assert np.abs(inside - outside).max() > 12 or stats[sp][1] > 25, sp


def test_coat_rules_match_taxon_before_prompt():
    assert "zebra" in match_rule("plains_zebra", {}, "an animal")[1]
    assert "felidae" in match_rule("snow_thing", {"family": "Felidae"}, "a dalmatian")[1]
    assert "dalmatian" in match_rule("dog", {"breed": "Dalmatian"}, "a dog")[1]
    assert match_rule("blob", {}, "a thing")[1] == "default"


def test_without_a_mesh_shades_the_normal_map(gen):
    req = toy_request(5, "zebra", "a zebra", with_mesh=False)
    img = np.asarray(gen.generate([req])[0])
    assert img.shape == (128, 128, 3)
    assert np.array_equal(img, np.asarray(gen.generate([req])[0]))
    assert img[req.mask].std(0).mean() > 20
