"""Progress lines for a long command that runs in this process (``genzoo export``).

A callback an export calls after every sample is far too often to print; :class:`ProgressLines`
prints the first call, then at most one line every ``every_s`` seconds (15 by default, so a
terminal never waits 30 s without one while samples are being written), and the last.
"""

from __future__ import annotations

import time
from collections.abc import Callable

PROGRESS_EVERY_S = 15.0


def export_line(what: str, done: int, total: int, shards: int, shards_total: int, s: float) -> str:
    """``export hf: 1200/5000 samples written, 2/10 shards (40 s)``; no shards part when the
    layout has none (``shards_total`` 0)."""
    line = f"{what}: {done}/{total} samples written"
    if shards_total:
        line += f", {shards}/{shards_total} shards"
    return f"{line} ({s:.0f} s)"


class ProgressLines:
    """An export ``progress(done, total, shards, shards_total)`` callback that says
    :func:`export_line` through ``say``: on the first call, after ``every_s`` without a line, and
    when every sample and shard is written. ``clock`` is for tests."""

    def __init__(
        self,
        what: str,
        say: Callable[[str], None],
        every_s: float = PROGRESS_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.what, self.say, self.every_s, self.clock = what, say, every_s, clock
        self.started = clock()
        self.last: float | None = None

    def __call__(self, done: int, total: int, shards: int, shards_total: int) -> None:
        now = self.clock()
        finished = done == total and shards == shards_total
        if self.last is None or finished or now - self.last >= self.every_s:
            self.say(export_line(self.what, done, total, shards, shards_total, now - self.started))
            self.last = now
