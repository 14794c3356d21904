"""Matching the leased CUDA device to its EGL device, with fake EGL device lists."""

from genzoo_assets.core import lease
from genzoo_assets.core.render import egl_device
from genzoo_assets.core.render.egl_device import EglDevice, drm_pci_bus_id, match, normalise_bus_id


def test_bus_ids_in_nvml_torch_and_sysfs_spellings_are_one():
    assert (
        normalise_bus_id("00000000:3B:00.0") == normalise_bus_id("0000:3b:00.0") == "0000:3b:00.0"
    )
    assert normalise_bus_id("garbage") is None and normalise_bus_id(None) is None


def test_match_by_pci_bus_id_not_by_index():
    # EGL lists a software device first and the GPUs in another order than CUDA
    devices = [
        EglDevice(0),
        EglDevice(1, pci_bus_id="0000:b1:00.0"),
        EglDevice(2, pci_bus_id="0000:3b:00.0"),
    ]
    assert match(0, "00000000:3B:00.0", devices) == 2
    assert match(1, "0000:b1:00.0", devices) == 1
    assert match(0, "0000:99:00.0", devices) is None  # not listed: pyrender's default, not GPU 0


def test_match_by_the_egl_cuda_device_attribute_when_no_bus_id_is_known():
    devices = [EglDevice(0, cuda_device=1), EglDevice(1, cuda_device=0), EglDevice(2)]
    assert match(0, None, devices) == 1 and match(1, "", devices) == 0
    assert match(3, None, devices) is None


def test_drm_file_to_its_pci_address(tmp_path):
    pci = tmp_path / "devices" / "0000:3b:00.0"
    pci.mkdir(parents=True)
    (tmp_path / "card1").mkdir()
    (tmp_path / "card1" / "device").symlink_to(pci)
    assert drm_pci_bus_id("/dev/dri/card1", sysfs=tmp_path) == "0000:3b:00.0"
    assert drm_pci_bus_id("/dev/dri/card9", sysfs=tmp_path) is None


def test_no_lease_or_a_fake_one_keeps_pyrenders_default(tmp_path):
    queried = []
    assert egl_device.leased_egl_device(lambda: queried.append(1) or []) is None
    env = {"GENZOO_FAKE_GPUS": "2", "GENZOO_GPU_LOCK_DIR": str(tmp_path)}
    with lease.hold(env=env):
        assert egl_device.leased_egl_device(lambda: queried.append(1) or []) is None
    assert queried == []


def test_an_offscreen_renderer_opens_the_egl_device_it_is_given():
    import numpy as np
    import pyrender

    from genzoo_assets.core.render.renderer import _OffscreenOn, _release

    scene = pyrender.Scene(bg_color=np.zeros(4), ambient_light=np.ones(3))
    scene.add(pyrender.Mesh.from_points(np.zeros((1, 3))))
    pose = np.eye(4)
    pose[2, 3] = 1.0  # one unit in front of the point, looking down -z
    scene.add(pyrender.OrthographicCamera(1.0, 1.0), pose=pose)
    images = []
    for index in (0, None):  # EGL device 0 by index, and pyrender's own choice
        gl = _OffscreenOn(16, 16, index)
        assert (gl._egl_index, type(gl._platform).__name__) == (index, "EGLPlatform")
        images.append(gl.render(scene)[0])
        _release(gl)
    assert images[0].shape == images[1].shape == (16, 16, 3)
    assert np.array_equal(images[0], images[1])
