"""Where outputs live, and writing them so a reader never sees half a file and no killed writer
leaves one behind."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from genzoo_assets.core.errors import InputError
from genzoo_assets.core.processes import process_alive

DATA_DIR_ENV = "GENZOO_DATA_DIR"


class DataDirError(InputError):
    """The data directory cannot be used (missing permission, not a directory, ...)."""


def data_dir(create: bool = True, override: str | os.PathLike | None = None) -> Path:
    """The output root: ``override`` if given, else ``$GENZOO_DATA_DIR`` if set, else ``./data``."""
    root = Path(override or os.environ.get(DATA_DIR_ENV) or "data").expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise DataDirError(
            f"data directory {root} is a file, not a folder (set {DATA_DIR_ENV} to a folder)"
        )
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(
                f"data directory {root} cannot be created: {exc.strerror or exc}"
            ) from exc
        if not os.access(root, os.W_OK):
            raise DataDirError(
                f"data directory {root} is not writable (set {DATA_DIR_ENV} to a writable folder)"
            )
    return root


TEMP_SUFFIX = ".tmp"
TEMP_SEP = "~"  # in no host name, so ``.<name>~<host>~<pid>~<token>.tmp`` parses from the right
STALE_AFTER_S = (
    24 * 3600
)  # a temporary of another host, or of unknown owner, is stale after a day untouched
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_FREE_BYTES = (
    1 << 20
)  # an opaque write error on a filesystem with less free space is a full disk

_swept: set[Path] = set()  # folders this process has already cleared of stale temporaries


class DiskFullError(DataDirError):
    """The data directory's filesystem is full: an input error (retrying cannot help)."""


TEMP_COMPANIONS = (".wal",)  # files a library writes beside a temporary (DuckDB's write-ahead log)


def _owner_name(name: str) -> str:
    """``name`` without a companion suffix: ``.x~h~1~t.tmp.wal`` belongs to ``.x~h~1~t.tmp``."""
    for suffix in TEMP_COMPANIONS:
        if name.endswith(TEMP_SUFFIX + suffix):
            return name[: -len(suffix)]
    return name


def temp_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) of the writer named in a temporary's (or its companion's) name, None for other
    names."""
    name = _owner_name(name)
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return None
    parts = name[: -len(TEMP_SUFFIX)].rsplit(TEMP_SEP, 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def is_stale_temp(path: Path, now: float | None = None, max_age_s: float = STALE_AFTER_S) -> bool:
    """Whether ``path`` is a temporary whose writer is gone.

    A temporary of this host is stale as soon as its writer's pid is dead, and never while it lives
    (a concurrent writer's file is never touched); a temporary of another host, or one without an
    owner in its name (``.export-*`` folders, older ``.tmp`` names), only once untouched for
    ``max_age_s``.
    """
    name = _owner_name(path.name)
    if not name.startswith(".") or not (name.endswith(TEMP_SUFFIX) or name.startswith(".export-")):
        return False
    owner = temp_owner(name)
    if owner is not None and owner[0] == socket.gethostname():
        return not process_alive(owner[1])
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > max_age_s


def sweep_stale_temps(folder: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Remove the stale temporaries (files and folders) directly inside ``folder``; returns them."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        path = Path(entry.path)
        if not is_stale_temp(path, now):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # another process removed it first
            continue
        removed.append(path)
    return removed


def _temp_name(path: Path) -> Path:
    owner = f"{TEMP_SEP}{socket.gethostname()}{TEMP_SEP}{os.getpid()}{TEMP_SEP}"
    return path.parent / f".{path.name}{owner}{secrets.token_hex(4)}{TEMP_SUFFIX}"


def _prepare_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
    if path.parent not in _swept:
        sweep_stale_temps(path.parent)
        _swept.add(path.parent)


def new_temp_file(path: str | os.PathLike) -> Path:
    """Create an empty temporary file beside ``path``, with the mode the umask gives a new file.

    Its name, ``.<name>~<host>~<pid>~<token>.tmp``, is hidden from ``*.parquet``-style globs and names
    its writer, so the next process writing into the folder removes it if this one is killed
    (``sweep_stale_temps``, once per folder and process).
    """
    path = Path(path)
    _prepare_folder(path)
    while True:
        tmp = _temp_name(path)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # 0o666 & ~umask
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise_if_disk_full(exc, path)
            raise


def _disk_full(exc: BaseException, folder: Path) -> bool:
    seen = exc
    while seen is not None:
        if getattr(seen, "errno", None) in DISK_FULL_ERRNOS or "No space left on device" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    try:  # torch.save and other writers lose the errno: judge by the space that is left
        st = os.statvfs(folder)
    except OSError:
        return False
    return (
        isinstance(exc, (OSError, RuntimeError))
        and st.f_bavail * st.f_frsize < DISK_FULL_FREE_BYTES
    )


def raise_if_disk_full(exc: BaseException, path: str | os.PathLike) -> None:
    """Turn a write error on a full filesystem into one ``DiskFullError`` line naming the file."""
    path = Path(path)
    if _disk_full(exc, path.parent):
        raise DiskFullError(
            f"disk full: writing {path} failed with no space left on its filesystem; "
            f"free space there or set {DATA_DIR_ENV} to a larger disk"
        ) from exc


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike, shared: bool = False, timeout: float | None = None
) -> Iterator[None]:
    """An ``flock`` on ``path`` (created with its folder), held for the block; the kernel releases it
    when the holder dies, so a killed process never leaves it held.

    Exclusive by default; ``shared=True`` admits any number of shared holders and no exclusive one
    (a readers-writer lock; a lock file that exists but cannot be written, e.g. on a read-only
    mount, is still locked through a read-only handle). Blocks until free, or raises
    ``TimeoutError`` after ``timeout`` seconds.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = open(path, "a")
    except PermissionError:
        if not (shared and path.is_file()):
            raise
        handle = open(path)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    with handle:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, mode | (fcntl.LOCK_NB if deadline is not None else 0))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{path} is still locked by another process after {timeout} s"
                    ) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary (``new_temp_file``) has the umask's mode, so the output is as readable as any new
    file (group-readable under the usual 0o022 or 0o002). A failed block, or a full disk
    (``DiskFullError``, not retried), removes it.
    """
    path = Path(path)
    tmp_path = new_temp_file(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as exc:
        raise_if_disk_full(exc, path)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary folder next to ``path``; rename it onto ``path`` only if the block
    succeeds (``path`` must not exist, or be an empty folder). Named like :func:`new_temp_file`'s
    files, so the next writer into the folder sweeps it if this one is killed."""
    path = Path(path)
    _prepare_folder(path)
    while True:
        tmp = _temp_name(path)
        try:
            tmp.mkdir()
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise_if_disk_full(exc, path)
            raise
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            path.rmdir()  # an empty folder the caller checked; a non-empty one raises
        os.rename(tmp, path)
    except (OSError, RuntimeError) as exc:
        raise_if_disk_full(exc, path)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def lock_is_held(path: str | os.PathLike) -> bool:
    """Whether another process holds an ``flock`` (shared or exclusive) on ``path`` right now."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def hold_shared_lock(path: str | os.PathLike):
    """An open handle to the existing file ``path`` holding a shared ``flock`` until it is closed
    (or its process dies): a lease for as long as an object lives, where :func:`file_lock` holds
    one for a block."""
    handle = open(path, "rb")
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


class PathEscapeError(InputError):
    """A path read from a table, or a file name built from a sample id, leaves the folder it must
    stay in (``..``, an absolute path elsewhere, a symlink out): an input error, never followed."""


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def stored_path(root: str | os.PathLike, rel: object, sample_id: object, column: str) -> Path:
    """The file that a table's ``column`` names for ``sample_id``, checked to lie in ``root``.

    Tables store paths relative to the data directory (``root``); a path with a ``..`` component,
    an absolute path, or one whose symlinks resolve outside ``root`` is refused with one line
    naming the sample, the column and the path, so no table can make an export read (and
    publish) a file from elsewhere. An absolute path that resolves inside ``root`` is accepted.
    """
    text = "" if rel is None else str(rel)
    where = f"sample {sample_id}: column {column} holds {text!r}"
    if not text or "\0" in text or ".." in Path(text).parts:
        raise PathEscapeError(f"{where}, which is not a path inside the data directory {root}")
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, text))
    if not _inside(real, real_root):
        raise PathEscapeError(f"{where}, which resolves outside the data directory {root}")
    return Path(root) / text


def check_file_name(name: object, sample_id: object, what: str) -> str:
    """``name`` (built from ``sample_id``) if it names one file directly inside a folder: not empty,
    not ``.``/``..`` or hidden, no path separator or control character; else one line naming the
    sample and ``what`` it would have named."""
    text = str(name)
    bad = (
        not text
        or text.startswith(".")
        or any(sep in text for sep in ("/", "\\"))
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in text)
    )
    if bad:
        raise PathEscapeError(
            f"sample {sample_id!r}: {what} {text!r} is not a plain file name "
            "(sample ids must not hold '/', '\\', control characters or start with '.')"
        )
    return text
