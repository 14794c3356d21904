"""atomic_path: umask modes, stale temporaries of killed writers removed (live ones never), disk full; file_lock."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from genzoo_assets.core import paths
from genzoo_assets.core.paths import (
    DiskFullError,
    atomic_path,
    new_temp_file,
    sweep_stale_temps,
    write_bytes_atomic,
)

HOST = socket.gethostname()


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_umasks_mode(tmp_path, umask, mask, mode):
    umask(mask)
    write_bytes_atomic(tmp_path / "a.bin", b"x")
    with atomic_path(tmp_path / "b.pt") as tmp:
        torch.save({"w": torch.zeros(2)}, tmp)
    for name in ("a.bin", "b.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temp(
    folder: Path, name: str, host: str, pid: int, age_s: float = 0.0, folder_kind: bool = False
) -> Path:
    path = folder / f".{name}~{host}~{pid}~{uuid.uuid4().hex[:8]}.tmp"
    if folder_kind:
        path.mkdir()
        (path / "part").write_bytes(b"x")
    else:
        path.write_bytes(b"half")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_stale_temps_are_removed_and_a_live_writers_temps_kept(tmp_path, monkeypatch):
    day = paths.STALE_AFTER_S
    stale = [
        _temp(tmp_path, "000.parquet", HOST, _dead_pid()),  # killed writer on this host
        _temp(tmp_path, "shards", HOST, _dead_pid(), folder_kind=True),
        _temp(
            tmp_path, "000.parquet", "other-node", 12345, age_s=2 * day
        ),  # another host's, untouched for 2 days
        tmp_path / ".000.parquet.k3j2h1.tmp",  # an older mkstemp-style name, untouched for 2 days
        tmp_path / ".export-abc123",  # an export folder of a killed run
    ]
    stale[3].write_bytes(b"half")
    stale[4].mkdir()
    for p in stale[3:]:
        os.utime(p, (time.time() - 2 * day,) * 2)
    kept = [
        _temp(
            tmp_path, "000.parquet", HOST, os.getpid(), age_s=3 * day
        ),  # a live writer: never, however old
        _temp(tmp_path, "000.parquet", "other-node", 12345, age_s=60),  # another host's, recent
        tmp_path / ".keep",
        tmp_path / "000.parquet",
    ]
    for p in kept[2:]:
        p.write_bytes(b"data")
    monkeypatch.setattr(paths, "_swept", set())
    tmp = new_temp_file(tmp_path / "000.parquet")  # the next write into the folder sweeps it
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in kept] + [tmp.name])
    assert sweep_stale_temps(tmp_path) == []


def test_a_temp_names_its_writer_and_is_removed_when_the_block_fails(tmp_path):
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "x.parquet") as tmp:
            assert paths.temp_owner(tmp.name) == (HOST, os.getpid())
            raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_is_one_input_error_naming_the_file_and_leaves_no_temp(tmp_path, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(DiskFullError) as info:
        write_bytes_atomic(tmp_path / "a.png", b"x" * 10)
    message = str(info.value)
    assert "\n" not in message and "disk full" in message and str(tmp_path / "a.png") in message
    assert isinstance(info.value, paths.DataDirError)  # INPUT_ERRORS: never retried
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_fs(tmp_path):
    """A 256 KiB tmpfs (needs root and mount rights; skipped where they are missing)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_really_full_disk_under_torch_save_is_a_disk_full_error(tiny_fs):
    """torch.save loses the errno (a RuntimeError): the free space left decides."""
    with pytest.raises(DiskFullError, match="disk full"):
        with atomic_path(tiny_fs / "checkpoint.pt") as tmp:
            torch.save({"w": torch.zeros(200_000)}, tmp)
    assert list(tiny_fs.iterdir()) == []


def test_file_lock_shared_holders_coexist_and_keep_an_exclusive_one_out(tmp_path, monkeypatch):
    lock = tmp_path / "x.lock"
    with paths.file_lock(lock, shared=True), paths.file_lock(lock, shared=True):
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="x.lock is still locked"):
            with paths.file_lock(lock, timeout=0.2):
                pass
        assert time.monotonic() - t0 >= 0.2
    with paths.file_lock(lock, timeout=0.2):  # free again
        with pytest.raises(TimeoutError):
            with paths.file_lock(lock, shared=True, timeout=0.1):
                pass

    def read_only_mount(path, mode="r"):  # what open(..., "a") does there
        if mode != "r":
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        return open(path, mode)

    monkeypatch.setattr(paths, "open", read_only_mount, raising=False)
    with paths.file_lock(lock, shared=True):  # readers still lock an existing lock file
        with pytest.raises(PermissionError):  # a writer cannot
            with paths.file_lock(lock):
                pass
