"""The process a SLURM job runs: ``python -m genzoo_assets.slurm.worker`` = ``dagster api execute_step``
(its input from ``DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS``), except for SIGTERM.

SLURM ends a job it cancels, times out or preempts with SIGTERM (then SIGKILL after ``KillWait``).
Dagster's step worker maps SIGTERM to its interrupt handling and records an "interrupted" step
failure of its own, which hides the job's real state and cannot be retried: a preempted step would
fail for good. Here SIGTERM ends the process at once (status 143) instead, so the step records no
outcome and the executor reports the one SLURM records (CANCELLED, TIMEOUT, PREEMPTED, ...),
retrying the retryable ones. Nothing half-written is left: every output is written to a temporary
and renamed. Ctrl-C (SIGINT) keeps Dagster's handling. Blocking SIGTERM in the step process instead
would be inherited by every process it starts (Dagster's own log tailers then ignore the
SIGTERM that stops them), so the override is in this process's handlers, not its signal mask.
"""

from __future__ import annotations

import os
import signal
import sys


def _exit_now(_signo, _frame) -> None:
    os._exit(128 + signal.SIGTERM)


def main() -> None:
    from dagster._cli import main as dagster_main
    from dagster._utils import interrupts

    interrupts.setup_interrupt_handlers = lambda: (
        None
    )  # Dagster would point SIGTERM at its SIGINT handler
    signal.signal(signal.SIGTERM, _exit_now)
    sys.argv = ["dagster", "api", "execute_step"]
    dagster_main()


if __name__ == "__main__":
    main()
