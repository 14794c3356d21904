"""SIGTERM and SIGINT stop a `genzoo` command: its runs are marked cancelled and it exits.

Dagster swaps both handlers while it executes a run (it records the signal and interrupts the
step), and a step with a retry policy would retry an interrupted step: the GPU steps therefore
turn an interrupt into a failure that is never retried (``defs.resources.fail_fast_on_input_errors``)
and :func:`genzoo_assets.app.run.materialize` turns it back into :class:`Stopped`. Outside a run our
handler raises :class:`Stopped` at once.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """The command was asked to stop. A BaseException, so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int | None = None):
        self.signum = signum
        name = signal.Signals(signum).name if signum else "an interrupt"
        super().__init__(f"stopped by {name}")

    @property
    def status(self) -> int:
        """The shell's exit status for a process ended by the signal (130 when it is not known)."""
        return 128 + (self.signum or signal.SIGINT)


def _raise_stopped(signum: int, frame) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`Stopped` in the main thread."""
    previous = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
