"""SLURM's side: what a step asks for (``JobRequest``), its batch script, and the four commands the
executor uses (``sbatch``, ``squeue``, ``sacct`` when accounting exists, ``scancel``).

States are SLURM's job states (``squeue -o %T``). A job is in flight until it reaches one of
``FINAL_STATES``; ``FAILED_STATES`` fail the step with that state, ``RETRY_STATES`` (the node or
the job's place was taken away, not the step's fault) go through the step's retry policy.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

FAILED_STATES = frozenset(
    {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "BOOT_FAIL", "DEADLINE"}
)
RETRY_STATES = frozenset({"PREEMPTED", "NODE_FAIL"})
FINAL_STATES = FAILED_STATES | RETRY_STATES | {"COMPLETED"}
IN_FLIGHT_STATES = "PENDING,RUNNING,CONFIGURING,COMPLETING,SUSPENDED,REQUEUED,RESIZING"


class SlurmError(RuntimeError):
    """A SLURM command failed; the message is the command's own error line."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_token(value: object, key: str, where: str, option: bool = False) -> str:
    """``value`` if it can stand on a ``#SBATCH`` line as one plain token: no control character (a
    newline would end the line, and what follows would run as a shell command of the job's user,
    while sbatch stops reading ``#SBATCH`` lines) and no whitespace (sbatch splits there);
    ``option``: an sbatch argument, so it starts with ``-``. Else one line naming the key."""
    text = str(value)
    if not text or _CONTROL.search(text) or any(ch.isspace() for ch in text):
        raise ValueError(
            f"{where}: {key}={text!r}: not a plain SLURM token (no whitespace or control "
            "characters such as newlines)"
        )
    if option and not text.startswith("-"):
        raise ValueError(
            f"{where}: {key}={text!r}: expected an sbatch option such as --constraint=a100"
        )
    return text


@dataclasses.dataclass(frozen=True)
class JobRequest:
    """One step's resources. Fields left ``None`` are not passed, so the cluster's defaults apply."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None  # SLURM's format: MM, HH:MM:SS, D-HH:MM
    cpus: int | None = None  # --cpus-per-task
    mem: str | None = None  # --mem, e.g. 16G
    gres: str | None = None  # e.g. gpu:1; GPU steps only
    extra_args: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, values: Mapping, where: str) -> JobRequest:
        """Validated fields from config or an op tag; ``where`` names the source in errors."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(
                f"{where}: unknown SLURM setting(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})"
            )
        out = {}
        for name, value in values.items():
            if value is None:
                continue
            if name == "cpus":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{where}: cpus={value!r}: expected a positive integer")
            elif name == "extra_args":
                if isinstance(value, str) or not all(isinstance(a, str) for a in value):
                    raise ValueError(
                        f"{where}: extra_args={value!r}: expected a list of sbatch arguments"
                    )
                value = tuple(check_token(a, "extra_args", where, option=True) for a in value)
            elif not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where}: {name}={value!r}: expected a non-empty string")
            else:
                check_token(value, name, where)
            out[name] = value
        return cls(**out)

    def merged(self, override: JobRequest) -> JobRequest:
        """``override``'s set fields win; extra arguments accumulate."""
        changes = {
            f.name: getattr(override, f.name)
            for f in dataclasses.fields(self)
            if f.name != "extra_args" and getattr(override, f.name) is not None
        }
        return dataclasses.replace(
            self, **changes, extra_args=self.extra_args + override.extra_args
        )

    def sbatch_options(self) -> list[str]:
        flags = [
            ("--partition", self.partition),
            ("--account", self.account),
            ("--qos", self.qos),
            ("--time", self.time),
            ("--cpus-per-task", self.cpus),
            ("--mem", self.mem),
            ("--gres", self.gres),
        ]
        return [f"{flag}={value}" for flag, value in flags if value is not None] + list(
            self.extra_args
        )


@dataclasses.dataclass(frozen=True)
class JobInfo:
    job_id: str
    state: str
    node: str
    reason: str
    exit_code: str = ""

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def batch_script(
    job_name: str,
    request: JobRequest,
    stdout: Path,
    stderr: Path,
    workdir: Path,
    setup: Sequence[str],
    env: Mapping[str, str],
    command: Sequence[str],
) -> str:
    """The sbatch script of one step (the template in ``deploy/slurm/README.md``).

    Every value is checked or quoted, whatever checked it before: ``#SBATCH`` values are plain
    tokens (:func:`check_token`), ``setup`` lines hold no control character, environment names
    are identifiers, environment values and the command are shell-quoted.
    """
    where = "sbatch script"
    check_token(job_name, "job_name (job_name_prefix + run + step)", where)
    for key, value in (("output", stdout), ("error", stderr), ("chdir", workdir)):
        check_token(value, key, where)
    for option in request.sbatch_options():
        check_token(option, "option", where, option=True)
    for line in setup:
        if _CONTROL.search(line):
            raise ValueError(f"{where}: setup line {line!r} holds a control character")
    for name in env:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"{where}: environment variable name {name!r} is not an identifier")
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --output={stdout}",
        f"#SBATCH --error={stderr}",
        f"#SBATCH --chdir={workdir}",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=1",
        "#SBATCH --no-requeue",  # requeueing would rerun an attempt Dagster already counts; retries are its job
        *(f"#SBATCH {option}" for option in request.sbatch_options()),
        "set -e",
        *setup,
    ]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    lines.append("exec " + " ".join(shlex.quote(part) for part in command))
    return "\n".join(lines) + "\n"


def _run(args: list[str], stdin: str | None = None) -> str:
    binary = shutil.which(args[0])
    if binary is None:
        raise SlurmError(f"{args[0]}: not found on PATH (is this a SLURM submit host?)")
    done = subprocess.run(
        [binary, *args[1:]], input=stdin, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise SlurmError(
            f"{' '.join(args[:2])}: {message[-1] if message else f'exit status {done.returncode}'}"
        )
    return done.stdout


def submit(script: Path) -> str:
    """``sbatch --parsable SCRIPT`` → the job id."""
    return _run(["sbatch", "--parsable", str(script)]).strip().split(";")[0]


def _parse(lines: Iterable[str], width: int) -> list[list[str]]:
    return [row for row in (line.split("|") for line in lines if line.strip()) if len(row) >= width]


def query(job_ids: Sequence[str]) -> dict[str, JobInfo]:
    """Current state of each job slurmctld still holds (in flight, or finished within ``MinJobAge``),
    then ``sacct`` for the rest where accounting is configured. Jobs found nowhere are left out."""
    if not job_ids:
        return {}
    found = {}
    out = _run(
        [
            "squeue",
            "--noheader",
            "--states=all",
            f"--jobs={','.join(job_ids)}",
            "--format=%i|%T|%N|%r",
        ]
    )
    for job_id, state, node, reason in _parse(out.splitlines(), 4):
        found[job_id] = JobInfo(job_id, state.split()[0], node, reason)
    missing = [j for j in job_ids if j not in found]
    if missing and shutil.which("sacct"):
        try:
            out = _run(
                [
                    "sacct",
                    "--noheader",
                    "--parsable2",
                    "--allocations",
                    f"--jobs={','.join(missing)}",
                    "--format=JobID,State,NodeList,Reason,ExitCode",
                ]
            )
        except SlurmError:
            out = ""  # no accounting storage on this cluster: squeue is all there is
        for job_id, state, node, reason, exit_code in _parse(out.splitlines(), 5):
            found[job_id] = JobInfo(job_id, state.split()[0], node, reason, exit_code)
    return found


def in_flight(name_prefix: str) -> int:
    """This user's jobs in flight whose names start with ``name_prefix``."""
    out = _run(["squeue", "--me", "--noheader", f"--states={IN_FLIGHT_STATES}", "--format=%j"])
    return sum(1 for name in out.split() if name.startswith(name_prefix))


def cancel(job_ids: Sequence[str]) -> None:
    if job_ids:
        _run(["scancel", *job_ids])
