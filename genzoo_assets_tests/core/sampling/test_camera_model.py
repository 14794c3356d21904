import numpy as np
import pytest

from genzoo_assets.core.sampling.camera_model import Camera, project, view_angles, view_rotation


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (90, 0), (-45, 20), (170, -10), (30, 60)])
def test_view_angles_invert_view_rotation(yaw, pitch):
    r = view_rotation(yaw, pitch)
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    assert np.allclose(view_angles(r), (yaw, pitch), atol=1e-9)


def test_facing_camera_points_forward_to_minus_z():
    fwd = view_rotation(0, 0) @ np.array([1.0, 0, 0])
    assert np.allclose(fwd, [0, 0, -1])
    right_view = view_rotation(90, 0) @ np.array([1.0, 0, 0])
    assert np.allclose(right_view, [1, 0, 0])


def test_projection_conventions():
    persp = Camera("perspective", resolution=100, fov_deg=90.0)
    assert np.allclose(project([0, 0, 2.0], persp), [50, 50])
    assert np.allclose(project([1.0, 0, 1.0], persp), [100, 50])  # tan(45°) reaches the image edge
    weak = Camera("weak", resolution=100, scale=0.5, tx=0.1, ty=-0.2)
    assert np.allclose(project([1.0, 0.0, 5.0], weak), [(0.6 + 1) * 50, (-0.2 + 1) * 50])


def test_bad_camera_names_the_field():
    with pytest.raises(ValueError, match="fov_deg"):
        Camera("perspective", resolution=64, fov_deg=0)
    with pytest.raises(ValueError, match="camera model"):
        Camera("fisheye", resolution=64)
