import cv2
import numpy as np
import pytest
import trimesh

from genzoo_assets.core.render.controls import bbox_from_mask, mask_area
from genzoo_assets.core.render.renderer import ControlRenderer
from genzoo_assets.core.sampling.camera_model import Camera, project

RES = 256
SPHERE = trimesh.creation.icosphere(2, radius=0.15)
CAMERAS = {
    "perspective": Camera("perspective", RES, fov_deg=40.0),
    "weak": Camera("weak", RES, scale=0.9, tx=0.13, ty=-0.21),
}


@pytest.fixture(scope="module")
def renderer():
    with ControlRenderer(RES, subdivisions=1) as r:
        yield r


def _expected_centre(centre: np.ndarray, radius: float, camera: Camera) -> np.ndarray:
    """Centre of the silhouette: ``project()`` of the sphere centre, plus, for a perspective
    camera, the exact off-axis shift of a sphere's image ellipse (f·c_xy·c_z / (c_z² − r²))."""
    if camera.model == "weak":
        return project(centre, camera)
    cz = centre[2]
    return camera.focal_px * centre[:2] * cz / (cz**2 - radius**2) + RES / 2


@pytest.mark.parametrize("model", ["perspective", "weak"])
@pytest.mark.parametrize("centre", [(0.0, 0.0, 3.0), (0.31, -0.17, 2.6), (-0.43, 0.52, 3.4)])
def test_silhouette_centroid_matches_project(renderer, model, centre):
    camera, centre = CAMERAS[model], np.array(centre)
    verts, _ = renderer.subdivide(SPHERE.vertices + centre, SPHERE.faces)
    radius = float(np.linalg.norm(verts - centre, axis=1).mean())
    maps = renderer.render(SPHERE.vertices + centre, SPHERE.faces, camera)
    rows, cols = np.nonzero(maps.mask)
    centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])  # pixel centres at integer + 0.5
    err = np.abs(centroid - _expected_centre(centre, radius, camera))
    assert err.max() < 0.1, (model, centre, err)
    assert mask_area(maps.mask) > 500


@pytest.mark.parametrize("model", ["perspective", "weak"])
def test_depth_metric_and_ordering(renderer, model):
    camera = CAMERAS[model]
    near_c, far_c = np.array([-0.35, 0.0, 2.0]), np.array([0.35, 0.0, 3.0])
    verts = np.vstack([SPHERE.vertices + near_c, SPHERE.vertices + far_c])
    faces = np.vstack([SPHERE.faces, SPHERE.faces + len(SPHERE.vertices)])
    maps = renderer.render(verts, faces, camera)
    near_px = np.round(project(near_c, camera)).astype(int)
    far_px = np.round(project(far_c, camera)).astype(int)
    sub, _ = renderer.subdivide(SPHERE.vertices, SPHERE.faces)
    r = float(np.linalg.norm(sub, axis=1).mean())
    # Metric depth at each sphere's centre pixel is its front surface, z - r (camera-frame Z).
    d_near = maps.depth[near_px[1], near_px[0]]
    d_far = maps.depth[far_px[1], far_px[0]]
    assert abs(d_near - (near_c[2] - r)) < 0.01 and abs(d_far - (far_c[2] - r)) < 0.01
    assert d_far > d_near
    # The uint8 depth is inverted: the near sphere is brighter, background 0, foreground >= 1.
    assert maps.depth_u8[near_px[1], near_px[0]] > maps.depth_u8[far_px[1], far_px[0]]
    assert maps.depth_u8[near_px[1], near_px[0]] >= 250 and maps.depth_u8.max() == 255
    assert (maps.depth_u8[~maps.mask] == 0).all() and (maps.depth_u8[maps.mask] >= 1).all()
    assert (maps.depth[~maps.mask] == 0).all() and (maps.depth[maps.mask] > 0).all()


def test_normal_colours_mask_bbox_canny(renderer):
    camera = CAMERAS["perspective"]
    centre = np.array([0.0, 0.0, 2.5])
    maps = renderer.render(SPHERE.vertices + centre, SPHERE.faces, camera)
    c = RES // 2
    # Facing the camera: normal (0, 0, 1) in the OpenGL camera frame → (128, 128, 255).
    np.testing.assert_allclose(maps.rgb[c, c].astype(float), [128, 128, 255], atol=3)
    # Upper part of the sphere (image top, y up in OpenGL) is greener; the right side is redder.
    rows, cols = np.nonzero(maps.mask)
    assert maps.rgb[rows.min() + 2, c, 1] > 200 and maps.rgb[c, cols.max() - 2, 0] > 200
    # Background is black; only the one-pixel rim outside the mask blends (multisampled colour).
    rim = cv2.dilate(maps.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (maps.rgb[~rim] == 0).all() and (maps.rgb[maps.mask].max(axis=1) > 32).all()
    x, y, w, h = bbox_from_mask(maps.mask)
    assert (x, y, x + w, y + h) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    assert maps.mask[int(y) : int(y + h), int(x) : int(x + w)].sum() == mask_area(maps.mask)
    assert maps.canny.dtype == np.uint8 and set(np.unique(maps.canny)) <= {0, 255}
    edge_rows, edge_cols = np.nonzero(maps.canny)
    assert len(edge_rows) > 50
    assert edge_cols.min() >= x - 2 and edge_cols.max() <= x + w + 1


def test_reuse_matches_fresh_renderer_and_resizes(renderer):
    rng = np.random.default_rng(3)
    box = trimesh.creation.box((0.4, 0.3, 0.6))
    samples = []
    for model in ("perspective", "weak"):
        rot = trimesh.transformations.random_rotation_matrix(rng.random(3))[:3, :3]
        samples.append((box.vertices @ rot.T + [0.1, -0.05, 2.5], CAMERAS[model]))
    reused = [renderer.render(v, box.faces, cam) for v, cam in samples]
    small = renderer.render(samples[0][0], box.faces, Camera("perspective", 64, fov_deg=40.0))
    assert small.rgb.shape == (64, 64, 3)
    again = renderer.render(samples[1][0], box.faces, samples[1][1])
    for a, (v, cam) in zip(reused, samples):
        with ControlRenderer(RES, subdivisions=1) as fresh:
            b = fresh.render(v, box.faces, cam)
        for field in ("rgb", "depth", "depth_u8", "mask", "canny"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    np.testing.assert_array_equal(again.rgb, reused[1].rgb)


def test_bad_inputs_are_named(renderer):
    cam = CAMERAS["perspective"]
    with pytest.raises(ValueError, match="behind the camera"):
        renderer.render(SPHERE.vertices, SPHERE.faces, cam)
    with pytest.raises(ValueError, match="vertices must be"):
        renderer.render(np.zeros((0, 3)), SPHERE.faces, cam)
    with pytest.raises(ValueError, match="faces index"):
        renderer.render(SPHERE.vertices[:10] + [0, 0, 3], SPHERE.faces, cam)
    with pytest.raises(TypeError, match="Camera"):
        renderer.render(SPHERE.vertices + [0, 0, 3], SPHERE.faces, {"model": "weak"})
