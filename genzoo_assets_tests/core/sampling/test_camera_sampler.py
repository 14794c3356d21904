import numpy as np
import pytest

from genzoo_assets.core.sampling.camera_model import project, view_angles
from genzoo_assets.core.sampling.camera_sampler import sample_camera, sample_view


@pytest.mark.parametrize("model", ["perspective", "weak"])
def test_every_vertex_projects_inside_the_image(standing_vertices, model):
    rng = np.random.default_rng(0)
    for i in range(120):
        verts = standing_vertices[i % len(standing_vertices)]
        cs = sample_camera(model, verts, rng, resolution=256, margin=0.02)
        uv = project(verts @ cs.view.rotation.T + cs.transl, cs.camera)
        assert uv.min() >= 256 * 0.02 - 1e-6 and uv.max() <= 256 * 0.98 + 1e-6, (
            i,
            uv.min(),
            uv.max(),
        )
        assert (verts @ cs.view.rotation.T + cs.transl)[:, 2].min() > 0  # in front of the camera
        if model == "perspective":
            assert 30 <= cs.camera.fov_deg <= 60
        else:
            assert cs.camera.scale > 0


def test_body_fills_a_good_part_of_the_image(standing_vertices):
    rng = np.random.default_rng(1)
    fills = []
    for model in ("perspective", "weak"):
        for _ in range(30):
            cs = sample_camera(model, standing_vertices[0], rng, resolution=100)
            uv = project(standing_vertices[0] @ cs.view.rotation.T + cs.transl, cs.camera)
            fills.append((uv.max(0) - uv.min(0)).max() / 100)
    assert min(fills) > 0.4 and max(fills) <= 1.0


def test_weak_perspective_puts_the_body_in_the_lower_half(standing_vertices):
    rng = np.random.default_rng(2)
    lower = 0
    for _ in range(60):
        cs = sample_camera(
            "weak", standing_vertices[0], rng, resolution=100, scale_range=(0.5, 0.6)
        )
        uv = project(standing_vertices[0] @ cs.view.rotation.T + cs.transl, cs.camera)
        lower += (uv[:, 1].min() + uv[:, 1].max()) / 2 >= 50 - 1e-6
    assert lower == 60


def test_fixed_fov_is_used_and_view_is_consistent(standing_vertices):
    cs = sample_camera("perspective", standing_vertices[0], np.random.default_rng(3), fov_deg=42.0)
    assert cs.camera.fov_deg == 42.0
    assert np.allclose(view_angles(cs.view.rotation), (cs.view.yaw_deg, cs.view.pitch_deg))


def test_yaw_uniform_and_pitch_mostly_slightly_above():
    rng = np.random.default_rng(4)
    views = [sample_view(rng) for _ in range(4000)]
    yaw = np.array([v.yaw_deg for v in views])
    pitch = np.array([v.pitch_deg for v in views])
    counts, _ = np.histogram(yaw, bins=8, range=(-180, 180))
    assert counts.min() > 0.8 * 500 and counts.max() < 1.2 * 500
    assert pitch.min() >= -10 and pitch.max() <= 60 and 8 < pitch.mean() < 13
    assert np.mean(pitch > 0) > 0.75


def test_bad_inputs_are_named(standing_vertices):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="camera model 'fisheye'"):
        sample_camera("fisheye", standing_vertices[0], rng)
    with pytest.raises(ValueError, match="vertices_canonical"):
        sample_camera("weak", np.full((4, 3), np.nan), rng)
    with pytest.raises(ValueError, match="margin"):
        sample_camera("weak", standing_vertices[0], rng, margin=0.6)


def _genzoo_weak(verts, rng, img=1024):
    """GenZoo's utils.deduce_randomized_weak_perspective_params (pixels), transcribed with ``rng``
    in place of np.random, then its notebook's conversion to normalised (s, tx, ty)."""
    min_x, min_y = verts[:, :2].min(axis=0)
    max_x, max_y = verts[:, :2].max(axis=0)
    scale = min(img / (max_x - min_x), img / (max_y - min_y)) * rng.uniform(0.9, 1.0)
    tx = rng.uniform(0 - scale * min_x, img - scale * max_x)
    ty_min, ty_max = 0 - scale * min_y, img - scale * max_y
    ty = rng.uniform((ty_min + ty_max) / 2, ty_max)
    s, tx, ty = np.array([scale, tx, ty]) / img
    return 2 * s, (tx - 0.5) * 2, (ty - 0.5) * 2


def test_weak_framing_is_genzoos_by_default(standing_vertices):
    """No margin: the same draws give GenZoo's camera exactly (its normalised s·X + t)."""
    for i, verts in enumerate(standing_vertices):
        view = sample_view(np.random.default_rng(100 + i))
        cs = sample_camera("weak", verts, np.random.default_rng(i), resolution=1024, view=view)
        ref = _genzoo_weak(verts @ view.rotation.T, np.random.default_rng(i))
        np.testing.assert_allclose(
            (cs.camera.scale, cs.camera.tx, cs.camera.ty), ref, rtol=1e-12, atol=1e-12
        )
    cs = sample_camera(
        "weak",
        standing_vertices[0],
        np.random.default_rng(0),
        resolution=1024,
        view=view,
        scale_range=(1.0, 1.0),
    )
    uv = project(standing_vertices[0] @ view.rotation.T + cs.transl, cs.camera)
    assert np.ptp(uv, axis=0).max() == pytest.approx(
        1024
    )  # at scale factor 1 the box spans the whole image
