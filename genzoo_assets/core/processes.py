"""Whether a process id still names the process that used it (stale temp files, dead runs' pool slots)."""

from __future__ import annotations

import os

PROC = "/proc"


def _linux_state(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in epoch seconds) from /proc; None when the process does not exist."""
    try:
        with open(f"{PROC}/{pid}/stat") as fh:
            stat = fh.read()
        with open(f"{PROC}/stat") as fh:
            boot = next(float(line.split()[1]) for line in fh if line.startswith("btime"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[
        1
    ].split()  # after "pid (comm)": state is field 3, starttime field 22
    return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, since: float | None = None) -> bool:
    """Whether ``pid`` runs on this host (zombies count as gone) and, given ``since`` (epoch
    seconds), started no later than it: a pid reused by a newer process is not the one we mean."""
    if os.path.isdir(f"{PROC}/self"):
        state = _linux_state(pid)
        if state is None or state[0] in "ZX":
            return False
        return (
            since is None or state[1] <= since + 2.0
        )  # /proc start times have clock-tick resolution
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


BOOT_ID = "/proc/sys/kernel/random/boot_id"


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of ``pid`` in this PID namespace."""
    stat = _read(f"{PROC}/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def _here() -> tuple[str, str] | None:
    """(boot id, PID namespace) of this process: together they say which pids it can judge."""
    boot = _read(BOOT_ID)
    try:
        namespace = os.readlink(f"{PROC}/self/ns/pid")
    except OSError:
        return None
    return (boot, namespace) if boot else None


def process_identity(pid: int | None = None) -> str | None:
    """``<boot id>/<PID namespace>/<pid>/<start ticks>`` of ``pid`` (default: this process), read
    from this process's view (``pid`` must be in its PID namespace); None without Linux's /proc.

    A pid alone names a process only on one boot of one kernel, in one PID namespace, until it is
    reused: containers and ``unshare`` give each namespace its own pids, and another host or a
    reboot reuses them all. The identity names all four, so :func:`identity_alive` can tell.
    """
    here = _here()
    pid = os.getpid() if pid is None else pid
    state = _start_ticks(pid)
    if here is None or state is None:
        return None
    return f"{here[0]}/{here[1]}/{pid}/{state[1]}"


def identity_alive(identity: str) -> bool | None:
    """Whether the process ``identity`` (:func:`process_identity`) still runs: True or False only
    when this process sees the same boot and PID namespace (its pid is then this process's to look
    up, and the start time tells a reused pid apart); None when it cannot know (another host, boot
    or namespace, a malformed identity, no /proc)."""
    parts = identity.split("/") if isinstance(identity, str) else []
    if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit():
        return None
    here = _here()
    if here is None or (parts[0], parts[1]) != here:
        return None
    state = _start_ticks(int(parts[2]))
    return state is not None and state[0] not in "ZX" and state[1] == int(parts[3])
