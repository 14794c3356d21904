"""The EGL device that is the same physical GPU as the leased CUDA device.

pyrender opens ``EGL_DEVICE_ID`` (default 0), an index into *all* devices ``eglQueryDevicesEXT``
lists; it ignores ``CUDA_VISIBLE_DEVICES``, so by index every render lands on GPU 0, and inside a
SLURM job possibly on another job's GPU. The leased device is matched instead by its PCI bus id
(the EGL device's DRM file → its sysfs PCI node) or, where that is unknown, by NVIDIA's
``EGL_CUDA_DEVICE_NV`` attribute (the CUDA ordinal of the EGL device). No match (Mesa's software
EGL, no lease): ``None``, pyrender's default device.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EGL_CUDA_DEVICE_NV = 0x323A
EGL_DRM_DEVICE_FILE_EXT = 0x3233


@dataclass(frozen=True)
class EglDevice:
    """One entry of ``eglQueryDevicesEXT``: ``index`` is what pyrender's ``EGL_DEVICE_ID`` means."""

    index: int
    cuda_device: int | None = None  # EGL_CUDA_DEVICE_NV, NVIDIA's EGL only
    pci_bus_id: str | None = None  # "0000:3b:00.0", from the DRM device file


def normalise_bus_id(bus_id: str | None) -> str | None:
    """``domain:bus:device.function`` in one spelling (NVML writes an 8-digit upper-case domain)."""
    if not bus_id:
        return None
    try:
        domain, bus, rest = bus_id.strip().lower().split(":")
        device, function = rest.split(".")
        return f"{int(domain, 16):04x}:{int(bus, 16):02x}:{int(device, 16):02x}.{int(function, 16)}"
    except ValueError:
        return None


def match(ordinal: int, pci_bus_id: str | None, devices: list[EglDevice]) -> int | None:
    """The EGL index of the GPU that is ``cuda:<ordinal>`` (PCI bus ``pci_bus_id``), or ``None``."""
    wanted = normalise_bus_id(pci_bus_id)
    if wanted:
        for dev in devices:
            if normalise_bus_id(dev.pci_bus_id) == wanted:
                return dev.index
    for dev in devices:
        if dev.cuda_device is not None and dev.cuda_device == ordinal:
            return dev.index
    return None


def drm_pci_bus_id(drm_file: str, sysfs: Path = Path("/sys/class/drm")) -> str | None:
    """The PCI address of a DRM device file (``/dev/dri/card1`` → ``0000:3b:00.0``)."""
    node = sysfs / Path(drm_file).name / "device"
    try:
        return normalise_bus_id(os.path.basename(os.path.realpath(node))) if node.exists() else None
    except OSError:
        return None


def query_egl_devices() -> list[EglDevice]:
    """This host's EGL devices with what each says of itself (``[]`` where EGL cannot list them)."""
    try:
        from pyrender.platforms import egl
    except Exception:  # noqa: BLE001 - no EGL here: nothing to match
        return []
    attrib: Callable | None = egl._get_egl_func(
        "eglQueryDeviceAttribEXT",
        egl.egl.EGLBoolean,
        egl._EGLDeviceEXT,
        egl.egl.EGLint,
        ctypes.POINTER(ctypes.c_ssize_t),
    )
    try:
        found = egl.query_devices()
    except Exception:  # noqa: BLE001
        return []
    out = []
    for index, dev in enumerate(found):
        handle = dev._display  # pyrender keeps the EGLDeviceEXT under this name
        cuda = None
        if attrib is not None:
            value = ctypes.c_ssize_t(-1)
            if attrib(handle, EGL_CUDA_DEVICE_NV, ctypes.pointer(value)) and value.value >= 0:
                cuda = int(value.value)
        try:
            drm = dev.name  # the DRM device file, None where EGL has none (software)
        except Exception:  # noqa: BLE001 - EGL_EXT_device_drm missing
            drm = None
        out.append(EglDevice(index, cuda, drm_pci_bus_id(drm) if drm else None))
    return out


def leased_egl_device(query: Callable[[], list[EglDevice]] = query_egl_devices) -> int | None:
    """The EGL index for this process's GPU lease; ``None`` without a lease on a real GPU."""
    from genzoo_assets.core import lease

    held = lease.current()
    if held is None or held.device.fake:
        return None
    return match(held.device.ordinal, held.describe().get("pci_bus_id"), query())
