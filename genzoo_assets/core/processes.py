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
