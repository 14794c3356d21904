"""`app/run.py` `materialize`: quiet, forwards the assets' progress and warnings, says it is still
running, and turns an interrupt into a cancelled run; `fail_fast_on_input_errors` retries only what
retrying can help."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from genzoo_assets.app import cli, run
from genzoo_assets.app.signals import Stopped
from genzoo_assets.core.errors import InputError, input_error, is_input_error
from genzoo_assets.core.oom import HalvingBatches, OutOfMemory
from genzoo_assets.core.sampling.pose_bank import PoseBankError
from genzoo_assets.defs.resources import fail_fast_on_input_errors

RETRY = dg.RetryPolicy(max_retries=1)  # no delay: a retry shows as STEP_UP_FOR_RETRY at once


def _retries(instance) -> int:
    return sum(
        r.event_log_entry.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"
        for r in instance.get_records_for_run(instance.get_runs()[0].run_id).records
        if r.event_log_entry.dagster_event is not None
    )


@dg.asset
def chatty(context) -> None:
    for step in (1, 2):
        context.log.info(f"step {step}/2 loss=0.5")
    context.log.warning("two steps only")
    time.sleep(7.0)  # the heartbeat (1 s) and at least two watcher polls (2 s) after the warning


def test_progress_and_warnings_are_forwarded_and_a_silent_run_says_it_is_still_running(capfd):
    said, progress = [], []
    with dg.instance_for_test() as instance:
        run.materialize(
            [chatty], instance, say=said.append, progress=progress.append, heartbeat_s=1
        )
    assert progress == ["chatty: step 1/2 loss=0.5", "chatty: step 2/2 loss=0.5"]
    assert "chatty: two steps only" in said
    # "chatty" while its step is seen running; "the run" when the watcher, late on a loaded
    # machine, read the step's end in the same poll and the run itself had not ended yet.
    assert any(
        line.startswith(("chatty: still running (", "the run: still running (")) for line in said
    ), said
    out, err = capfd.readouterr()
    assert "dagster - " not in out + err  # Dagster's console logger is off


@dg.asset
def bad_bank() -> None:
    raise PoseBankError("pose bank /x.npz: 'poses' contains NaN or inf (first at pose 2)")


def test_a_failed_step_prints_nothing_and_raises_the_input_error(capfd):
    with dg.instance_for_test() as instance, pytest.raises(PoseBankError):
        run.materialize([bad_bank], instance, say=print)
    out, err = capfd.readouterr()
    assert "STEP_FAILURE" not in out + err and "Traceback" not in out + err


@dg.asset(retry_policy=RETRY)
@fail_fast_on_input_errors
def retried_input_error() -> None:
    raise PoseBankError("pose bank /x.npz is empty")


@dg.asset(retry_policy=RETRY)
@fail_fast_on_input_errors
def retried_bug() -> None:
    raise KeyError("a bug, not the user's input")


@dg.asset(retry_policy=RETRY)
@fail_fast_on_input_errors
def interrupted() -> None:
    raise KeyboardInterrupt  # what Dagster raises in a step on SIGTERM or SIGINT


def _always_oom(batch):
    raise RuntimeError("CUDA out of memory. Tried to allocate 8.00 GiB")


@dg.asset(retry_policy=RETRY)
@fail_fast_on_input_errors
def out_of_memory() -> None:
    HalvingBatches(4, step="images species=zebra shard=000").map(_always_oom, [1, 2, 3])


@pytest.mark.parametrize(
    ("asset", "retries"),
    [(retried_input_error, 0), (retried_bug, 1), (out_of_memory, 0)],
    ids=["input", "bug", "oom"],
)
def test_only_a_bug_keeps_the_retry_policy(asset, retries):
    with dg.instance_for_test() as instance:
        result = dg.materialize([asset], instance=instance, raise_on_error=False)
        assert not result.success
        assert _retries(instance) == retries


def test_an_interrupted_step_is_not_retried_and_its_run_is_cancelled():
    with dg.instance_for_test() as instance:
        with pytest.raises(Stopped):
            run.materialize([interrupted], instance, say=print)
        (only,) = instance.get_runs()
        assert only.status == dg.DagsterRunStatus.CANCELED
        assert _retries(instance) == 0


def test_input_error_is_found_through_wrappers_and_builtins_are_not_input_errors():
    cause = PoseBankError("pose bank /x.npz is empty")
    try:
        try:
            raise cause
        except PoseBankError as exc:
            raise dg.Failure(description="wrapped", allow_retries=False) from exc
    except dg.Failure as wrapped:
        assert input_error(wrapped) is cause
    assert is_input_error(FileNotFoundError(2, "No such file or directory", "/models/x.pkl"))
    for bug in (KeyError("k"), TypeError("t"), RuntimeError("r"), ValueError("v"), OSError("o")):
        assert not is_input_error(bug), bug
    assert issubclass(InputError, ValueError)


def test_an_oom_at_a_batch_of_one_is_one_line_naming_step_device_and_batch(capfd, monkeypatch):
    with dg.instance_for_test() as instance, pytest.raises(dg.Failure) as caught:
        run.materialize([out_of_memory], instance, say=print)
    assert isinstance(input_error(caught.value), OutOfMemory)
    assert cli.report(caught.value) == 2
    out, err = capfd.readouterr()
    (line,) = err.splitlines()
    assert line.startswith("genzoo: error: images species=zebra shard=000: CUDA out of memory on ")
    assert "batch_size 4" in line and "Traceback" not in out + err
    monkeypatch.setenv("GENZOO_DEBUG", "1")
    assert cli.report(caught.value) is None  # main() lets it through with its traceback
