"""Helpers for driving a live `genzoo ui` (``dg dev``) server: ports, GraphQL, process clean-up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import psutil

TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(
    base_url: str, query: str, variables: dict | None = None, timeout: float = 30.0
) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(
        f"{base_url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        payload = json.load(resp)
    if payload.get("errors"):
        raise AssertionError(f"GraphQL errors from {base_url}: {payload['errors']}")
    return payload["data"]


LOCATIONS_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def wait_until_up(base_url: str, proc: subprocess.Popen, timeout: float, log_path=None) -> str:
    """Wait until the webserver answers and the code location has loaded; returns its name."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"`dg dev` exited with {proc.returncode} before serving:\n{_tail(log_path)}"
            )
        try:
            entries = graphql(base_url, LOCATIONS_QUERY, timeout=5)["workspaceOrError"][
                "locationEntries"
            ]
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = repr(exc)
        else:
            loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
            errors = [e for e in loaded if e["locationOrLoadError"]["__typename"] == "PythonError"]
            if errors:
                raise AssertionError(
                    f"code location failed to load: {errors[0]['locationOrLoadError']['message']}"
                )
            if loaded:
                return loaded[0]["name"]
            last = f"locations: {entries}"
        time.sleep(0.5)
    raise AssertionError(
        f"the web UI at {base_url} did not come up within {timeout:.0f} s ({last}):\n{_tail(log_path)}"
    )


RUNS_QUERY = """query Runs($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status jobName tags { key value } } }
  ... on PythonError { message } } }"""

RUN_LOGS_QUERY = """query Logs($runId: ID!) { logsForRun(runId: $runId) { __typename
  ... on EventConnection { events { __typename ... on MessageEvent { message }
    ... on ExecutionStepFailureEvent { stepKey error { message } } } } } }"""


def runs(base_url: str, tags: dict[str, str] | None = None) -> list[dict]:
    flt = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
    result = graphql(base_url, RUNS_QUERY, {"filter": flt})["runsOrError"]
    if result["__typename"] != "Runs":
        raise AssertionError(f"runsOrError: {result}")
    return result["results"]


def failure_messages(base_url: str, run_id: str) -> list[str]:
    events = graphql(base_url, RUN_LOGS_QUERY, {"runId": run_id})["logsForRun"].get("events", [])
    return [
        f"{e.get('stepKey')}: {e['error']['message']}" if e.get("error") else e.get("message", "")
        for e in events
        if "Failure" in e["__typename"]
    ]


def wait_for_run(base_url: str, tags: dict[str, str], timeout: float, on_poll=None) -> dict:
    """The single run carrying `tags`, once it has finished; fails with its errors unless SUCCESS."""
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        if on_poll:
            on_poll()
        found = runs(base_url, tags)
        if len(found) > 1:
            raise AssertionError(f"expected one run tagged {tags}, found {len(found)}: {found}")
        if found and found[0]["status"] in TERMINAL_RUN_STATUSES:
            run = found[0]
            if run["status"] != "SUCCESS":
                raise AssertionError(
                    f"run {run['runId']} ended {run['status']}: {failure_messages(base_url, run['runId'])}"
                )
            return run
        time.sleep(1.0)
    raise AssertionError(
        f"no finished run tagged {tags} within {timeout:.0f} s (last seen: {found})"
    )


class ProcessTracker:
    """Every process the server started: its process group, its session and its descendants
    (collected while running, since run workers can leave the tree once their parent exits)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.seen: dict[int, float] = {}

    def snapshot(self) -> None:
        try:
            root = psutil.Process(self.proc.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for p in family + self._grouped():
            try:
                self.seen[p.pid] = p.create_time()
            except psutil.NoSuchProcess:
                pass

    def _grouped(self) -> list[psutil.Process]:
        out = []
        for p in psutil.process_iter():
            try:
                if os.getpgid(p.pid) == self.proc.pid or os.getsid(p.pid) == self.proc.pid:
                    out.append(p)
            except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
                continue
        return out

    def alive(self) -> list[psutil.Process]:
        """Tracked processes still running (same pid and start time, so a reused pid is not counted)."""
        left = {p.pid: p for p in self._grouped()}
        for pid, started in self.seen.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == started:
                    left[pid] = p
            except psutil.NoSuchProcess:
                continue
        return [p for p in left.values() if _running(p)]

    def stop(self, grace_s: float = 10.0) -> list[str]:
        """SIGTERM the group and every tracked process, SIGKILL what is left after `grace_s`;
        returns descriptions of processes still alive afterwards (empty when all are gone)."""
        self.snapshot()
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.25)
        if self.alive():
            self._signal_all(signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.25)
        return [f"{p.pid} {' '.join(p.cmdline()[:4])}" for p in self.alive()]

    def _signal_all(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        for p in self.alive():
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _tail(path, n: int = 4000) -> str:
    if path is None or not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()[-n:]
