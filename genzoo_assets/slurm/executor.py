"""``slurm_executor``: every step is one SLURM batch job running ``dagster api execute_step``.

Built on Dagster's step delegation, as ``dagster-k8s``' ``k8s_job_executor`` is: the run worker
(the orchestrator) decides which steps are ready, the step handler submits each as ``sbatch``,
polls its state with ``squeue`` (``sacct`` where accounting exists), and cancels it with
``scancel`` when the run is terminated. The step's own events reach the run through the instance's
event log, so the instance storage and the data directory must be on the cluster's shared
filesystem.

A step's request: the ``default`` pool, then the step's pool (``gpu`` adds ``--gres=gpu:1``), then
the asset's ``genzoo/slurm`` op tag, then ``per_step`` in the executor config. A ``gpu``-pool step
whose backend runs on the CPU in this run (the offline captioner and prompter; renders unless
``gpu_renders``: see ``genzoo_assets.defs.gpu``) gets the ``default`` pool's request, no GPU, and
takes no ``gpu`` slot. Built-in requests (``DEFAULT_POOLS``) fit the paper's models: a GPU step
loads FLUX.1-dev + two ControlNets (~34 GB bf16) through host memory, hence 64 GB and 8 CPUs. A job that ends
FAILED, TIMEOUT, OUT_OF_MEMORY, CANCELLED (or BOOT_FAIL, DEADLINE) fails its step with that state;
PREEMPTED and NODE_FAIL go through the step's retry policy. ``max_jobs_in_flight`` bounds this
user's genzoo jobs across all runs, so a backfill of thousands of partitions queues in Dagster,
not as thousands of SLURM jobs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.definitions.executor_definition import multiple_process_executor_requirements
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData, StepFailureData
from dagster._core.execution.context.system import IStepContext
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.executor.init import InitExecutorContext
from dagster._core.executor.step_delegating import (
    CheckStepHealthResult,
    StepDelegatingExecutor,
    StepHandler,
    StepHandlerContext,
)
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._utils.error import SerializableErrorInfo

from genzoo_assets.core.paths import atomic_path, data_dir
from genzoo_assets.defs.gpu import (
    GPU_POOL,
    op_config,
    step_needs_gpu,
    without_gpu_pool_for_cpu_steps,
)
from genzoo_assets.slurm import jobs
from genzoo_assets.slurm.jobs import JobInfo, JobRequest, SlurmError

SLURM_TAG = "genzoo/slurm"  # op tag: a JobRequest mapping, e.g. {"time": "12:00:00", "mem": "64G"}
DEFAULT_POOLS = {
    "default": {"cpus": 4, "mem": "16G"},
    "gpu": {"cpus": 8, "mem": "64G", "gres": "gpu:1"},
}
DEFAULT_GPU_SLOTS = 200  # the `gpu` pool's limit under SLURM: GPU jobs in flight across runs
OUTCOMES = {
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_UP_FOR_RETRY,
}
NOT_FOUND_GRACE_S = 30.0  # squeue may not list a job in the first moments after sbatch returns
FINAL_REPORT_WAIT_S = 30.0
STDERR_TAIL_LINES = 20

SLURM_EXECUTOR_CONFIG = {
    "pools": dg.Field(
        dg.Permissive(),
        default_value={},
        description=(
            "Per pool SLURM request: {pool: {partition, account, qos, time, cpus, mem, gres, extra_args}}. "
            "`default` applies to every step (built in: 4 CPUs, 16G); `gpu` (steps that use a GPU) "
            "adds 8 CPUs, 64G and gres gpu:1 unless set."
        ),
    ),
    "per_step": dg.Field(
        dg.Permissive(), default_value={}, description="Per op name overrides, same fields."
    ),
    "gpu_slots": dg.Field(
        int,
        default_value=DEFAULT_GPU_SLOTS,
        description=(
            "The instance's `gpu` pool limit when `genzoo` commands open it with GENZOO_EXECUTOR=slurm: "
            "GPU steps in flight across runs (SLURM places them on free GPUs)."
        ),
    ),
    "gpu_renders": dg.Field(
        bool,
        default_value=False,
        description=(
            "Control renders and the render image backend ask for a GPU (NVIDIA EGL) instead of "
            "running on a CPU node's software EGL."
        ),
    ),
    "max_jobs_in_flight": dg.Field(
        int,
        default_value=200,
        description=(
            "Most genzoo jobs of this user pending or running at once, across all runs; a step waits to be submitted."
        ),
    ),
    "max_concurrent": dg.Field(
        dg.Noneable(int), default_value=None, description="Most steps in flight per run."
    ),
    "poll_interval_seconds": dg.Field(
        int, default_value=5, description="How often job states are polled."
    ),
    "log_dir": dg.Field(
        str,
        default_value="",
        description=(
            "Where batch scripts and job stdout/stderr go (a shared path); default DATA_DIR/slurm/RUN_ID."
        ),
    ),
    "setup": dg.Field(
        [str], default_value=[], description="Shell lines run before the step (module load, venv)."
    ),
    "job_name_prefix": dg.Field(str, default_value="genzoo"),
    "retries": get_retries_config(),
}


def pool_requests(pools: Mapping, where: str = "pools") -> dict[str, JobRequest]:
    """``DEFAULT_POOLS`` with ``pools`` merged over them, field by field."""
    if not isinstance(pools, Mapping):
        raise ValueError(
            f"{where}: expected a mapping of pool name to SLURM settings, got {pools!r}"
        )
    out = {
        name: JobRequest.from_mapping(values, f"{where}.{name}")
        for name, values in DEFAULT_POOLS.items()
    }
    for name, values in pools.items():
        if not isinstance(values, Mapping):
            raise ValueError(
                f"{where}.{name}: expected a mapping of SLURM settings, got {values!r}"
            )
        given = JobRequest.from_mapping(values, f"{where}.{name}")
        out[name] = out[name].merged(given) if name in out else given
    return out


def tag_request(tags: Mapping[str, str], op_name: str) -> JobRequest:
    """The ``genzoo/slurm`` op tag (Dagster stores non-string tag values as JSON)."""
    raw = tags.get(SLURM_TAG)
    if raw is None:
        return JobRequest()
    values = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(values, Mapping):
        raise ValueError(
            f"{op_name}: op tag {SLURM_TAG}={raw!r}: expected a mapping of SLURM settings"
        )
    return JobRequest.from_mapping(values, f"{op_name}: op tag {SLURM_TAG}")


def step_request(
    pools: Mapping[str, JobRequest],
    per_step: Mapping[str, JobRequest],
    pool: str | None,
    tags: Mapping[str, str],
    op_name: str,
) -> JobRequest:
    request = pools["default"]
    if pool and pool != "default" and pool in pools:
        request = request.merged(pools[pool])
    request = request.merged(tag_request(tags, op_name))
    return request.merged(per_step[op_name]) if op_name in per_step else request


def run_pool(pool: str | None, op_name: str, run_config: Mapping, gpu_renders: bool) -> str | None:
    """The pool whose request a step's job gets in this run: ``None`` (the ``default`` request, no
    GPU) for a ``gpu`` step whose backend runs on the CPU with this run config."""
    if pool == GPU_POOL and not step_needs_gpu(
        op_name, op_config(run_config, op_name), gpu_renders
    ):
        return None
    return pool


@dataclass
class _Job:
    """One step attempt's SLURM job."""

    step_context: IStepContext
    job_id: str | None  # None: sbatch refused it (the step's failure is already logged)
    submitted: float
    stdout: Path
    stderr: Path
    running_reported: bool = False
    final: JobInfo | None = None
    checks_since_final: int = 0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class SlurmStepHandler(StepHandler):
    """Submits, polls and cancels one run's step jobs."""

    def __init__(
        self,
        pools: Mapping[str, JobRequest],
        per_step: Mapping[str, JobRequest],
        max_jobs_in_flight: int,
        poll_interval_seconds: int,
        log_dir: str,
        setup: list[str],
        job_name_prefix: str,
        gpu_renders: bool = False,
    ):
        super().__init__()
        self.gpu_renders = gpu_renders
        self._pools = dict(pools)
        self._per_step = dict(per_step)
        self._max_in_flight = max_jobs_in_flight
        self._poll = poll_interval_seconds
        self._log_dir = log_dir
        self._setup = list(setup)
        self._prefix = job_name_prefix
        self._jobs: dict[tuple[str, int], _Job] = {}
        self._states: dict[str, JobInfo] = {}
        self._states_at = 0.0

    @property
    def name(self) -> str:
        return "SlurmStepHandler"

    @staticmethod
    def _key(ctx: StepHandlerContext) -> tuple[str, int]:
        (step_key,) = ctx.execute_step_args.step_keys_to_execute
        known = ctx.execute_step_args.known_state
        return step_key, known.get_retry_state().get_attempt_count(step_key) if known else 0

    def _run_dir(self, run_id: str) -> Path:
        base = Path(self._log_dir) if self._log_dir else data_dir() / "slurm"
        path = base / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _wait_for_room(self, ctx: StepHandlerContext, step_context: IStepContext) -> bool:
        """Block while ``max_jobs_in_flight`` jobs are in flight; False when the run is being terminated."""
        announced = False
        while (count := jobs.in_flight(self._prefix)) >= self._max_in_flight:
            run = ctx.instance.get_run_by_id(ctx.execute_step_args.run_id)
            if run is None or run.status in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED):
                return False
            if not announced:
                DagsterEvent.engine_event(
                    step_context,
                    (
                        f"Waiting to submit: {count} {self._prefix} SLURM jobs in flight (max_jobs_in_flight="
                        f"{self._max_in_flight})"
                    ),
                    EngineEventData(),
                )
                announced = True
            time.sleep(self._poll)
        return True

    def launch_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        ctx = step_handler_context
        step_key, attempt = self._key(ctx)
        step_context = ctx.get_step_context(step_key)
        step = step_context.step
        run_id = ctx.execute_step_args.run_id
        run_dir = self._run_dir(run_id)
        stem = f"{_safe(step_key)}.{attempt}"
        stdout, stderr = run_dir / f"{stem}.out", run_dir / f"{stem}.err"
        pool = run_pool(step.pool, step.op_name, ctx.dagster_run.run_config, self.gpu_renders)
        try:
            request = step_request(
                self._pools, self._per_step, pool, ctx.step_tags[step_key], step.op_name
            )
        except ValueError as exc:  # a bad genzoo/slurm op tag: this step fails, the run goes on
            self._jobs[(step_key, attempt)] = _Job(
                step_context, None, time.monotonic(), stdout, stderr
            )
            self._fail(step_context, str(exc))
            return
        if not self._wait_for_room(ctx, step_context):
            self._jobs[(step_key, attempt)] = _Job(
                step_context, None, time.monotonic(), stdout, stderr
            )
            return
        origin = ctx.execute_step_args.job_origin
        command = [origin.executable_path, "-m", "genzoo_assets.slurm.worker"]
        env = {e["name"]: e["value"] for e in ctx.execute_step_args.get_command_env()}
        env.update(DAGSTER_RUN_JOB_NAME=ctx.dagster_run.job_name, DAGSTER_RUN_STEP_KEY=step_key)
        job_name = f"{self._prefix}-{run_id[:8]}-{_safe(step_key)}"
        script = run_dir / f"{stem}.sbatch"
        with atomic_path(script) as tmp:
            tmp.write_text(
                jobs.batch_script(
                    job_name, request, stdout, stderr, Path.cwd(), self._setup, env, command
                )
            )
        try:
            job_id = jobs.submit(script)
        except SlurmError as exc:
            self._jobs[(step_key, attempt)] = _Job(
                step_context, None, time.monotonic(), stdout, stderr
            )
            self._fail(step_context, f"sbatch refused step {step_key}: {exc} (script: {script})")
            return
        self._jobs[(step_key, attempt)] = _Job(
            step_context, job_id, time.monotonic(), stdout, stderr
        )
        yield DagsterEvent.step_worker_starting(
            step_context,
            message=f'Executing step "{step_key}" in SLURM job {job_id} ({" ".join(request.sbatch_options())}).',
            metadata={
                "SLURM job id": job_id,
                "SLURM job name": job_name,
                "sbatch options": " ".join(request.sbatch_options()),
                "batch script": dg.MetadataValue.path(str(script)),
                "job stdout": dg.MetadataValue.path(str(stdout)),
                "job stderr": dg.MetadataValue.path(str(stderr)),
            },
        )

    def _refresh(self) -> None:
        if time.monotonic() - self._states_at < 1.0:
            return
        open_ids = [j.job_id for j in self._jobs.values() if j.job_id and j.final is None]
        self._states = jobs.query(open_ids)
        self._states_at = time.monotonic()

    @staticmethod
    def _has_outcome(ctx: StepHandlerContext, step_key: str, attempt: int) -> bool:
        """Whether the step reported success, failure or a retry for this attempt itself."""
        records = ctx.instance.get_records_for_run(
            ctx.execute_step_args.run_id, of_type=OUTCOMES
        ).records
        return sum(1 for r in records if r.event_log_entry.step_key == step_key) > attempt

    @staticmethod
    def _fail(step_context: IStepContext, message: str) -> None:
        """Fail the step now, without retries (the job's state says retrying cannot help)."""
        DagsterEvent.step_failure_event(
            step_context=step_context,
            step_failure_data=StepFailureData(
                error=SerializableErrorInfo(message, [], None), user_failure_data=None
            ),
        )

    def _report(self, job: _Job, info: JobInfo) -> None:
        message = f"SLURM job {info.job_id} {'ended' if info.final else 'is'} {info.state} on node {info.node or '-'}"
        metadata = {
            "SLURM job id": info.job_id,
            "SLURM state": info.state,
            "SLURM node": info.node or "",
            "job stdout": dg.MetadataValue.path(str(job.stdout)),
            "job stderr": dg.MetadataValue.path(str(job.stderr)),
        }
        if info.exit_code:
            metadata["SLURM exit code"] = info.exit_code
        DagsterEvent.engine_event(job.step_context, message, EngineEventData(metadata=metadata))

    def check_step_health(self, step_handler_context: StepHandlerContext) -> CheckStepHealthResult:
        ctx = step_handler_context
        step_key, attempt = self._key(ctx)
        job = self._jobs.get((step_key, attempt))
        if job is None:
            return CheckStepHealthResult.unhealthy(
                f"step {step_key} attempt {attempt} has no SLURM job"
            )
        if job.job_id is None:
            return CheckStepHealthResult.healthy()
        if job.final is None:
            self._refresh()
            info = self._states.get(job.job_id)
            if info is None:
                if time.monotonic() - job.submitted < NOT_FOUND_GRACE_S:
                    return CheckStepHealthResult.healthy()
                return CheckStepHealthResult.unhealthy(
                    f"SLURM job {job.job_id} for step {step_key} is known "
                    "neither to squeue nor to sacct"
                )
            if info.state == "RUNNING" and not job.running_reported:
                job.running_reported = True
                self._report(job, info)
            if not info.final:
                return CheckStepHealthResult.healthy()
            job.final = info
            self._report(job, info)
        info = job.final
        job.checks_since_final += 1
        if self._has_outcome(ctx, step_key, attempt):
            return CheckStepHealthResult.healthy()
        where = f"SLURM job {info.job_id} for step {step_key} ended {info.state} on node {info.node or '-'}"
        logs = f"job stdout: {job.stdout}, stderr: {job.stderr}"
        if info.state == "COMPLETED":
            if job.checks_since_final < 3:  # the step's last events may still be on their way
                return CheckStepHealthResult.healthy()
            job.job_id = None
            return CheckStepHealthResult.unhealthy(f"{where} without reporting a result ({logs})")
        if info.state in jobs.RETRY_STATES:
            job.job_id = None  # the executor now applies the step's retry policy, once
            return CheckStepHealthResult.unhealthy(f"{where} (retryable; {logs})")
        tail = _tail(job.stderr)
        self._fail(
            job.step_context,
            f"{where} (reason: {info.reason}; {logs})"
            + (f"\nlast lines of stderr:\n{tail}" if tail else ""),
        )
        job.job_id = None  # reported: later checks stay quiet until the failure is processed
        return CheckStepHealthResult.healthy()

    def terminate_step(self, step_handler_context: StepHandlerContext) -> Iterator[DagsterEvent]:
        step_key, attempt = self._key(step_handler_context)
        job = self._jobs.get((step_key, attempt))
        if job is None or job.job_id is None or job.final is not None:
            return
        yield DagsterEvent.engine_event(
            job.step_context,
            f"Cancelling SLURM job {job.job_id} (scancel)",
            EngineEventData(metadata={"SLURM job id": job.job_id}),
        )
        jobs.cancel([job.job_id])

    def report_final_states(self) -> None:
        """Record the final state and node of every job not yet seen to end (steps that succeeded
        are done before a poll sees their job finish); waits a few seconds for COMPLETING jobs."""
        deadline = time.monotonic() + FINAL_REPORT_WAIT_S
        while True:
            pending = [j for j in self._jobs.values() if j.job_id and j.final is None]
            if not pending:
                return
            self._states_at = 0.0
            self._refresh()
            for job in pending:
                info = self._states.get(job.job_id)
                if info is not None and (info.final or time.monotonic() > deadline):
                    job.final = info
                    self._report(job, info)
            if time.monotonic() > deadline:
                return
            time.sleep(0.5)


class SlurmExecutor(StepDelegatingExecutor):
    """Step delegation, plus each job's final SLURM state in its step's events once the run ends."""

    def execute(self, plan_context, execution_plan):
        plan = without_gpu_pool_for_cpu_steps(
            execution_plan, plan_context.dagster_run.run_config, self._step_handler.gpu_renders
        )
        yield from super().execute(plan_context, plan)
        self._step_handler.report_final_states()


@dg.executor(
    name="slurm",
    config_schema=SLURM_EXECUTOR_CONFIG,
    requirements=multiple_process_executor_requirements(),
)
def slurm_executor(init_context: InitExecutorContext) -> SlurmExecutor:
    """Every step as a SLURM batch job (see ``deploy/slurm/README.md`` for the settings)."""
    cfg = init_context.executor_config
    per_step = {
        name: JobRequest.from_mapping(values, f"per_step.{name}")
        for name, values in cfg["per_step"].items()
    }
    handler = SlurmStepHandler(
        pools=pool_requests(cfg["pools"]),
        per_step=per_step,
        max_jobs_in_flight=cfg["max_jobs_in_flight"],
        poll_interval_seconds=cfg["poll_interval_seconds"],
        log_dir=cfg["log_dir"],
        setup=cfg["setup"],
        job_name_prefix=cfg["job_name_prefix"],
        gpu_renders=cfg["gpu_renders"],
    )
    return SlurmExecutor(
        handler,
        retries=RetryMode.from_config(cfg["retries"]),
        max_concurrent=cfg["max_concurrent"],
        check_step_health_interval_seconds=cfg["poll_interval_seconds"],
        should_verify_step=True,
    )
