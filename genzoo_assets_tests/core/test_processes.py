"""process_alive: live, exited, zombie and reused pids."""

import os
import subprocess
import sys
import time

from genzoo_assets.core.processes import process_alive


def test_this_process_is_alive_and_an_exited_one_is_not():
    assert process_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not process_alive(proc.pid)


def test_a_zombie_counts_as_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while process_alive(proc.pid) and time.monotonic() < deadline:  # exited, not yet reaped
        time.sleep(0.05)
    assert not process_alive(proc.pid)
    proc.wait()


def test_a_pid_reused_by_a_newer_process_counts_as_gone():
    assert not process_alive(os.getpid(), since=0.0)  # this process started long after 1970
    assert process_alive(os.getpid(), since=time.time())
