import pickle
import sys
import types

import numpy as np
import pytest

from genzoo_assets.core.body import PROCEDURAL_SHAPE_AXES
from genzoo_assets.core.sampling.shape_prior import (
    PriorShapeSampler,
    SmalDataError,
    prior_for,
    taxon_shape_prior,
)
from genzoo_assets.core.sampling.shapes import make_shape_sampler

GIRAFFE = {
    "species": "giraffe",
    "common_name": "giraffe",
    "family": "Giraffidae",
    "order": "Artiodactyla",
}
PIG = {
    "species": "wild_boar",
    "common_name": "wild boar",
    "family": "Suidae",
    "order": "Artiodactyla",
}
CAT = {"species": "lion", "common_name": "lion", "family": "Felidae", "order": "Carnivora"}
WEASEL = {"species": "stoat", "common_name": "stoat", "family": "Mustelidae", "order": "Carnivora"}
HORSE = {"species": "horse", "common_name": "horse", "family": "Equidae", "order": "Perissodactyla"}
DOG = {"species": "dog", "common_name": "dog", "family": "Canidae", "order": "Carnivora"}
DACHSHUND = {
    "species": "dachshund",
    "common_name": "Dachshund",
    "breed": "Dachshund",
    "family": "Canidae",
    "order": "Carnivora",
}
AX = {name: i for i, name in enumerate(PROCEDURAL_SHAPE_AXES)}


def _draws(sampler, row, n=200, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([sampler.sample(row, rng) for _ in range(n)])


def test_prior_axes_match_the_procedural_model():
    assert tuple(taxon_shape_prior()["axes"]) == PROCEDURAL_SHAPE_AXES


def test_families_differ_in_the_expected_direction(body_model):
    s = make_shape_sampler("prior", body_model)
    g, p, c, w, h = (_draws(s, r).mean(0) for r in (GIRAFFE, PIG, CAT, WEASEL, HORSE))
    assert g[AX["neck_length"]] > p[AX["neck_length"]] + 3
    assert g[AX["leg_length"]] > p[AX["leg_length"]] + 3
    assert p[AX["girth"]] > c[AX["girth"]] + 1
    assert c[AX["tail_length"]] > p[AX["tail_length"]] + 1.5
    assert w[AX["body_length"]] > 1.5 and w[AX["leg_length"]] < -1.2
    assert h[AX["leg_length"]] > 1.0


def test_dogs_vary_widely_and_breeds_narrow_it(body_model):
    s = PriorShapeSampler(body_model)
    dogs, dachs = _draws(s, DOG), _draws(s, DACHSHUND)
    assert dogs[:, AX["leg_length"]].std() > 2 * dachs[:, AX["leg_length"]].std()
    assert dachs[:, AX["leg_length"]].mean() < -2 and dachs[:, AX["body_length"]].mean() > 1.5
    _, _, levels = prior_for(DACHSHUND)
    assert levels[-1].startswith("breed:")


def test_unknown_family_falls_back_to_order_then_global():
    m_order, _, lv = prior_for({"family": "Unknownidae", "order": "Perissodactyla"})
    assert lv == ["global", "order:perissodactyla"] and m_order[AX["leg_length"]] > 0
    m_global, s_global, lv = prior_for({"common_name": "mystery"})
    assert lv == ["global"] and np.all(m_global == 0) and np.all(s_global == 1)


def test_betas_are_finite_bounded_and_deterministic(body_model):
    s = PriorShapeSampler(body_model, beta_limit=3.0)
    b = _draws(s, GIRAFFE, n=100)
    assert (
        b.shape == (100, body_model.num_betas) and np.isfinite(b).all() and np.abs(b).max() <= 3.0
    )
    assert np.array_equal(_draws(s, GIRAFFE, n=5, seed=7), _draws(s, GIRAFFE, n=5, seed=7))
    assert not np.array_equal(_draws(s, GIRAFFE, n=5, seed=7), _draws(s, GIRAFFE, n=5, seed=8))


class _FakeSmal:
    num_betas = 41
    source = "/models/smal_CVPR2017.pkl"
    canonical_rotation = np.eye(3)


def _smal_data(path, chumpy=False):
    means = np.zeros((5, 41))
    means[np.arange(5), np.arange(5)] = 10.0 * (np.arange(5) + 1)  # cluster k marks beta k
    covs = np.stack([0.01 * np.eye(41)] * 5)
    data = {
        "cluster_means": list(means),
        "cluster_cov": list(covs),
        "toys_betas": np.zeros((3, 41)),
    }
    if chumpy:
        module = types.ModuleType("chumpy.ch")

        class Ch:
            def __reduce__(self):
                return (Ch, (), {"x": self.x})

        Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
        module.Ch = Ch
        sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), module
        try:
            wrapped = []
            for m in means:
                c = Ch()
                c.x = m
                wrapped.append(c)
            data["cluster_means"] = wrapped
            path.write_bytes(pickle.dumps(data, protocol=2))
        finally:
            del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    else:
        path.write_bytes(pickle.dumps(data, protocol=2))
    return path


@pytest.mark.parametrize("chumpy", [False, True])
def test_smal_clusters_map_families(tmp_path, chumpy):
    s = PriorShapeSampler(
        _FakeSmal(), smal_data=_smal_data(tmp_path / "smal_data.pkl", chumpy), beta_limit=100
    )
    assert "smal_data" in s.model_files
    rng = np.random.default_rng(0)
    for row, k in ((CAT, 0), (DOG, 1), (HORSE, 2), (GIRAFFE, 3), (PIG, 4)):
        b = s.sample(row, rng)
        assert b.shape == (41,) and int(np.argmax(b[:5])) == k


def test_smal_data_errors_name_the_file(tmp_path, body_model):
    with pytest.raises(SmalDataError, match="does not exist"):
        PriorShapeSampler(_FakeSmal(), smal_data=tmp_path / "nope.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(SmalDataError, match="bad.pkl"):
        PriorShapeSampler(_FakeSmal(), smal_data=bad)
    keys = tmp_path / "keys.pkl"
    keys.write_bytes(pickle.dumps({"cluster_means": [np.zeros(41)]}))
    with pytest.raises(SmalDataError, match="cluster_cov"):
        PriorShapeSampler(_FakeSmal(), smal_data=keys)
    shape = tmp_path / "shape.pkl"
    shape.write_bytes(
        pickle.dumps({"cluster_means": [np.zeros(41)] * 5, "cluster_cov": [np.eye(40)] * 5})
    )
    with pytest.raises(SmalDataError, match="cluster_cov is"):
        PriorShapeSampler(_FakeSmal(), smal_data=shape)
    with pytest.raises(SmalDataError, match="smal_data"):
        PriorShapeSampler(_FakeSmal())


def test_factory_rejects_unknown_backends(body_model):
    with pytest.raises(ValueError, match="unknown shape sampler 'awol2'"):
        make_shape_sampler("awol2", body_model)
    with pytest.raises(ValueError, match="flow_checkpoint"):
        make_shape_sampler("clip_flow", body_model, attributes="x.npz")
