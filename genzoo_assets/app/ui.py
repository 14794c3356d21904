"""`genzoo ui`: the Dagster web UI (``dg dev``) on loopback with the project-local DAGSTER_HOME."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from genzoo_assets.app.instance import REPO_ROOT, dagster_home, project_instance
from genzoo_assets.app.signals import Stopped
from genzoo_assets.core.errors import InputError


def dg_executable() -> str:
    local = Path(sys.executable).with_name("dg")
    found = str(local) if local.exists() else shutil.which("dg")
    if not found:
        raise InputError("the `dg` command (dagster-dg-cli) is not installed in this environment")
    return found


def ui_command(host: str, port: int) -> list[str]:
    return [dg_executable(), "dev", "--host", host, "--port", str(port)]


def start_ui(
    host: str = "127.0.0.1", port: int = 3000, data_dir: str | None = None, **popen
) -> subprocess.Popen:
    """Start ``dg dev`` in its own process group (so `stop_process_group` reaches every child)."""
    instance = project_instance()  # creates DAGSTER_HOME and sets the gpu pool before the UI starts
    venv = Path(sys.executable).parent.parent  # dg dev runs the project in this environment
    env = dict(os.environ, DAGSTER_HOME=str(Path(instance.root_directory)), VIRTUAL_ENV=str(venv))
    if data_dir:
        env["GENZOO_DATA_DIR"] = str(Path(data_dir).resolve())
    return subprocess.Popen(
        ui_command(host, port), cwd=REPO_ROOT, env=env, start_new_session=True, **popen
    )


def run_ui(host: str = "127.0.0.1", port: int = 3000, data_dir: str | None = None) -> int:
    """Run the UI until it exits; SIGTERM or SIGINT (Ctrl-C) stops its whole process group
    (`dg dev`, the webserver, the daemon, the code server) before the command exits."""
    proc = start_ui(host, port, data_dir)
    print(
        f"Dagster UI on http://{host}:{port}  (DAGSTER_HOME={dagster_home()}; Ctrl-C stops it)",
        flush=True,
    )
    try:
        return proc.wait()
    except (Stopped, KeyboardInterrupt):
        stop_process_group(proc)
        raise
    finally:
        if proc.poll() is None:  # any other way out of this function: leave nothing running
            stop_process_group(proc)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_process_group(proc: subprocess.Popen, grace_s: float = 20.0) -> int:
    """SIGTERM the whole group, then SIGKILL whatever is left of it after ``grace_s``.

    `dg dev`'s children ignore SIGTERM for ~15 s and may outlive `dg dev` itself, so the group,
    not the leader, decides when we are done.
    """
    pgid = proc.pid
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
        proc.poll()  # reap the leader so it does not keep the group alive as a zombie
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    return proc.wait()
