"""SIGTERM and SIGINT stop a `genzoo` command: its runs are marked cancelled and it exits.

Dagster swaps both handlers while it executes a run (it records the signal and interrupts the
step), and a step with a retry policy would retry an interrupted step: the GPU steps therefore
turn an interrupt into a failure that is never retried (``defs.resources.fail_fast_on_input_errors``)
and :func:`genzoo_assets.app.run.materialize` turns it back into :class:`Stopped`. Outside a run our
handler raises :class:`Stopped` at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """The command was asked to stop. A BaseException, so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int | None = None):
        self.signum = signum
        name = signal.Signals(signum).name if signum else "an interrupt"
        super().__init__(f"stopped by {name}")

    def __reduce__(self):  # a worker process sends it back to its parent pickled
        return (Stopped, (self.signum,))

    @property
    def status(self) -> int:
        """The shell's exit status for a process ended by the signal (130 when it is not known)."""
        return 128 + (self.signum or signal.SIGINT)


_received: list[int] = []  # signals received inside `stop_on_signals`, in order


def _raise_stopped(signum: int, frame) -> None:
    _received.append(signum)
    raise Stopped(signum)


def check_stopped() -> None:
    """Raise :class:`Stopped` if a signal came: the handler's own exception is lost when the
    signal lands in a finaliser or weakref callback (Python prints "Exception ignored")."""
    if _received:
        raise Stopped(_received[-1])


def exit_on_signals() -> None:
    """For a worker process: SIGTERM or SIGINT ends it at once, silently, with 128 + the signal.

    Dagster swaps the handlers during a run (the running step is interrupted instead) and puts
    these back after it; between runs a KeyboardInterrupt could land anywhere, even in a
    finaliser, and print a traceback.
    """
    for s in STOP_SIGNALS:
        signal.signal(s, lambda signum, frame: os._exit(128 + signum))


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`Stopped` in the main thread."""
    previous = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _received.clear()
