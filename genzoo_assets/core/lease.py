"""One GPU per running step: an exclusive, kernel-held lease on one of the devices this process sees.

Dagster pools only count slots; nothing assigns a device, and torch's ``"cuda"`` is ``cuda:0`` in
every process, so two concurrent steps on an 8-GPU node would share GPU 0. A step that runs on a
GPU therefore takes a lease first (before torch or pyrender touch the device):

- the devices are those the process may see: the entries of ``CUDA_VISIBLE_DEVICES`` (as SLURM,
  Kubernetes and most launchers set it), else every local GPU (``torch.cuda.device_count()``);
  inside a SLURM job without ``CUDA_VISIBLE_DEVICES`` none (the job was given no GPU);
- a device is held by ``flock`` on its lock file under ``GENZOO_GPU_LOCK_DIR`` (default
  ``/tmp/genzoo-gpu-locks``, a local folder: flock on NFS is not dependable). The kernel drops
  the lock when the process ends, so a step killed with SIGKILL frees its device for the next;
- lock files are named by host and by the device's identity as launchers give it (the
  ``CUDA_VISIBLE_DEVICES`` entry or the local index), plus the SLURM job id inside a job, whose
  devices are numbered from 0 again in each job;
- the leased device is ``cuda:<ordinal>`` for torch (:func:`genzoo_assets.core.device.resolve_device`
  picks it for ``auto``) and the EGL device that is the same physical GPU for pyrender
  (``genzoo_assets.core.render.egl_device``).

``GENZOO_FAKE_GPUS=N`` declares N devices (local indices 0..N-1, filtered by
``CUDA_VISIBLE_DEVICES`` as real ones are) so that the lease works on machines without GPUs: the
step then runs on the CPU but holds and records the leased index.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from genzoo_assets.core.errors import InputError

FAKE_GPUS_ENV = "GENZOO_FAKE_GPUS"
LOCK_DIR_ENV = "GENZOO_GPU_LOCK_DIR"
VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"
POLL_S = 0.2


class LeaseError(InputError, RuntimeError):
    """A device setting that cannot work (a bad ``GENZOO_FAKE_GPUS``, no device within a timeout)."""


@dataclass(frozen=True)
class Device:
    """One device this process may use.

    ``ordinal``: torch's ``cuda:<ordinal>`` here; ``key``: the device's identity as the launcher
    gave it (a ``CUDA_VISIBLE_DEVICES`` entry: an index or a ``GPU-<uuid>``, or the local index).
    """

    ordinal: int
    key: str
    fake: bool = False


def visible_entries(raw: str) -> list[str]:
    """CUDA's reading of ``CUDA_VISIBLE_DEVICES``: entries up to the first empty or negative one."""
    out = []
    for entry in (e.strip() for e in raw.split(",")):
        if not entry or entry.startswith("-"):
            break
        out.append(entry)
    return out


def fake_gpu_count(env: Mapping[str, str]) -> int | None:
    """``GENZOO_FAKE_GPUS`` as a count, ``None`` when unset."""
    raw = env.get(FAKE_GPUS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise LeaseError(f"{FAKE_GPUS_ENV}={raw!r}: expected a count of devices (0 or more)")
    return int(raw)


GPU_DRIVER_NODES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd")


def local_gpu_count(driver_nodes: tuple[str, ...] = GPU_DRIVER_NODES) -> int:
    """GPUs torch sees in this process (it honours ``CUDA_VISIBLE_DEVICES``); 0 without CUDA.

    Without a GPU driver (no NVIDIA or ROCm device node) the answer is 0 without importing torch:
    commands such as ``genzoo species add`` open the instance, which sizes the ``gpu`` pool from
    this count, and torch's import was 2 of their 5 seconds on a CPU-only machine.
    """
    if not any(os.path.exists(node) for node in driver_nodes):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def visible_devices(
    env: Mapping[str, str] | None = None, count: Callable[[], int] | None = None
) -> list[Device]:
    """The devices a step in this process may lease, in torch's ordinal order (``count``: how many
    GPUs torch sees, default :func:`local_gpu_count`)."""
    env = os.environ if env is None else env
    count = count or local_gpu_count
    fake = fake_gpu_count(env)
    raw = env.get(VISIBLE_ENV)
    if fake is not None:
        local = [str(i) for i in range(fake)]
        keys = local if raw is None else [e for e in visible_entries(raw) if e in local]
        return [Device(i, key, fake=True) for i, key in enumerate(keys)]
    if raw is None:
        if env.get("SLURM_JOB_ID"):
            return []  # a SLURM job that was given no GPU
        return [Device(i, str(i)) for i in range(count())]
    entries = visible_entries(raw)
    if not entries:
        return []
    return [Device(i, key) for i, key in enumerate(entries[: count()])]


def lock_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "genzoo-gpu-locks")


def _lock_name(device: Device, env: Mapping[str, str]) -> str:
    scope = socket.gethostname()
    if env.get("SLURM_JOB_ID"):
        scope += f"-slurm{env['SLURM_JOB_ID']}"
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", device.key)
    return f"{scope}-gpu{key}{'-fake' if device.fake else ''}.lock"


def _open_shared(path: Path) -> int:
    """The lock file, readable and writable by every user (several users share a node's GPUs)."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            path.parent.chmod(0o1777)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)
    return fd


@dataclass
class Lease:
    """A held device; released by :meth:`release` or when the process ends."""

    device: Device
    path: Path
    fd: int | None
    since: str  # UTC ISO time the lease was taken
    _description: dict | None = field(default=None, repr=False, compare=False)

    @property
    def torch_device(self) -> str:
        """``cuda:<ordinal>``, or ``cpu`` for a fake device."""
        return "cpu" if self.device.fake else f"cuda:{self.device.ordinal}"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = None

    def describe(self) -> dict:
        """What a step's metadata and each sample's provenance record: index, key, name, UUID."""
        if self._description is None:
            self._description = self._describe()
        return dict(self._description)

    def _describe(self) -> dict:
        out = {"index": self.device.ordinal, "visible_id": self.device.key, "since": self.since}
        if self.device.fake:
            return {**out, "name": f"fake GPU {self.device.key} ({FAKE_GPUS_ENV})", "torch": "cpu"}
        out["torch"] = self.torch_device
        out.update(cuda_properties(self.device.ordinal))
        return out


def cuda_properties(ordinal: int) -> dict:
    """Name, UUID and PCI bus id of ``cuda:<ordinal>`` (what torch can tell; empty without CUDA)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return {}
        props = torch.cuda.get_device_properties(ordinal)
    except Exception:  # noqa: BLE001 - a description must never fail the step
        return {}
    out = {"name": props.name}
    uuid = getattr(props, "uuid", None)
    if uuid is not None:
        out["uuid"] = f"GPU-{uuid}"
    bus = pci_bus_id(props)
    if bus:
        out["pci_bus_id"] = bus
    return out


def pci_bus_id(props) -> str:
    """``dddd:bb:dd.0`` from torch's device properties (empty when this torch does not report it)."""
    parts = [getattr(props, f"pci_{p}_id", None) for p in ("domain", "bus", "device")]
    if any(p is None for p in parts):
        return ""
    domain, bus, dev = parts
    return f"{domain:04x}:{bus:02x}:{dev:02x}.0"


def try_acquire(devices: list[Device], env: Mapping[str, str] | None = None) -> Lease | None:
    """The first free device of ``devices``, locked; ``None`` when every one is held."""
    env = os.environ if env is None else env
    base = lock_dir(env)
    for device in devices:
        path = base / _lock_name(device, env)
        fd = _open_shared(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return Lease(device, path, fd, datetime.now(UTC).isoformat(timespec="milliseconds"))
    return None


def acquire(
    devices: list[Device],
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    on_wait: Callable[[int], None] | None = None,
) -> Lease:
    """Block until one of ``devices`` is free and hold it (``on_wait(n)`` once, when all n are held)."""
    if not devices:
        raise LeaseError("no device to lease: this process sees no GPU")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waited = False
    while (lease := try_acquire(devices, env)) is None:
        if not waited and on_wait is not None:
            on_wait(len(devices))
        waited = True
        if deadline is not None and time.monotonic() > deadline:
            raise LeaseError(
                f"no GPU free within {timeout_s:.0f} s: all {len(devices)} are leased "
                f"(lock files in {lock_dir(env)})"
            )
        time.sleep(POLL_S)
    return lease


_held: Lease | None = None
_last_key: str | None = None  # the device this process held last: asked for first next time


def current() -> Lease | None:
    """The lease this process holds now (a step process holds at most one)."""
    return _held


@contextlib.contextmanager
def hold(
    devices: list[Device] | None = None,
    env: Mapping[str, str] | None = None,
    on_wait: Callable[[int], None] | None = None,
) -> Iterator[Lease | None]:
    """Hold one of ``devices`` (default: :func:`visible_devices`) for the block; ``None`` and no
    lock when the process sees no device. Nested use keeps the outer lease."""
    global _held, _last_key
    if _held is not None:
        yield _held
        return
    devices = visible_devices(env) if devices is None else devices
    if not devices:
        yield None
        return
    # A long-lived worker keeps its models resident (core.residency) on the device it used: the
    # same device again, when free, saves a second copy on another GPU.
    devices = sorted(devices, key=lambda d: d.key != _last_key)
    lease = acquire(devices, env, on_wait=on_wait)
    _held, _last_key = lease, lease.device.key
    try:
        yield lease
    finally:
        _held = None
        lease.release()
