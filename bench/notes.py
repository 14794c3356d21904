"""Progress for the benches, on stderr so that the tables on stdout stay clean.

A real-width call on a CPU runs for minutes (one 1024² FLUX image at one block per network: about
seven), so :func:`heartbeat` says every ``every_s`` seconds that the call is still running: a bench
is never silent for a minute.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

HEARTBEAT_S = 30.0


def note(message: str) -> None:
    """``[12:34:56] message`` on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def heartbeat(what: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Note ``what: still running (N s)`` every ``every_s`` seconds until the block ends."""
    started, stop = time.perf_counter(), threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            note(f"{what}: still running ({time.perf_counter() - started:.0f} s)")

    thread = threading.Thread(target=beat, name=f"heartbeat: {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
