"""Start and stop a cluster as a run: output lines one by one, a current step, a cancel, a result.

The panel iterates a `ClusterRun` in a worker thread and shows each line as it arrives, reads
`step` and `elapsed` for its header and may `cancel()` from the UI thread; the CLI iterates it
and prints. Success is what the dashboard says afterwards (`gcs_healthz` and the nodes alive),
never what Ray printed: `ray down` exits 0 even when its `ray stop` over SSH failed.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from openrag_tui.cluster import vectordb
from openrag_tui.cluster.dashboard import ENDPOINTS, DashboardClient, DashboardError
from openrag_tui.cluster.processes import (
    ProcessStream,
    StreamCancelled,
    StreamTimeout,
    find_ray,
    port_in_use,
    ray_processes,
)
from openrag_tui.cluster.raylog import failure_reason, step_marker
from openrag_tui.cluster.targets import (
    SSH_WAIT_KEY,
    ClusterFile,
    LocalHead,
    Target,
    ray_environment,
)
from openrag_tui.config import Settings

_POLL_S = 0.5
_TAIL_LINES = 60
RAY_MISSING = (
    "Ray's `ray` command was not found next to this Python or on PATH: "
    'install Ray here (pip install "ray[default]") or put `ray` on PATH.'
)


class Outcome(Enum):
    """How a run ended; the CLI maps it to its exit code."""

    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"  # Ray says it worked, but the dashboard cannot be reached from here
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Result:
    """The end of a run: an outcome and one plain sentence."""

    outcome: Outcome
    message: str

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass(frozen=True)
class Timeouts:
    """Seconds each step may take before it is stopped and the run fails."""

    ray_start: float = 120.0
    ray_stop: float = 120.0
    ray_up: float = 1200.0  # on top of the SSH wait: setup commands may pull images
    ray_down: float = 300.0
    dashboard: float = (
        60.0  # for the dashboard to answer after a start, or fall silent after a stop
    )
    nodes: float = 600.0  # with `wait`: for every node of the cluster.yaml to join


class _Ended(Exception):
    """Ends the run early with a result (a timeout, a cancel, a failed check)."""

    def __init__(self, result: Result) -> None:
        self.result = result


class ClusterRun:
    """One start or stop. Iterate it once to run it; every other member is safe from any thread."""

    def __init__(
        self,
        action: Literal["start", "stop"],
        target: Target,
        environment: Mapping[str, str],
        client: DashboardClient,
        *,
        wait: bool = False,
        timeouts: Timeouts | None = None,
        vector_store: vectordb.Embedded | None = None,
    ) -> None:
        self.action = action
        self.vector_store = vector_store  # a local head's Milvus Lite, started and stopped too
        self.target = target
        self.title = f"{'Starting' if action == 'start' else 'Stopping'} {target.description}"
        self.step = "Not started"
        self.result: Result | None = None
        self._environment = dict(environment)
        self._client = client
        self._wait = wait
        self._timeouts = timeouts or Timeouts()
        self._cancelled = threading.Event()
        self._began: float | None = None
        self._ended: float | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the run began (frozen once it ended)."""
        if self._began is None:
            return 0.0
        return (self._ended or time.monotonic()) - self._began

    def cancel(self) -> None:
        """Ask the run to stop: the running command's process group is terminated within ~0.1 s."""
        self._cancelled.set()

    def __iter__(self) -> Iterator[str]:
        if self._began is not None:
            raise RuntimeError("a ClusterRun runs once")
        self._began = time.monotonic()
        try:
            self.result = yield from self._body()
        except _Ended as ended:
            self.result = ended.result
        except (GeneratorExit, KeyboardInterrupt):  # abandoned mid-run: nothing is left running
            self.result = self._cancelled_result()
            raise
        finally:
            self._ended = time.monotonic()
            self.step = "Done"

    def _body(self) -> Generator[str, None, Result]:
        ray = find_ray()
        if ray is None:
            return Result(Outcome.FAILED, RAY_MISSING)
        target = self.target
        if self.action == "start" and isinstance(target, LocalHead):
            return (yield from self._start_local(ray, target))
        if self.action == "start" and isinstance(target, ClusterFile):
            return (yield from self._start_cluster(ray, target))
        if isinstance(target, LocalHead):
            return (yield from self._stop_local(ray, target))
        return (yield from self._stop_cluster(ray, target))

    # -- the four runs ---------------------------------------------------------------------

    def _start_local(self, ray: str, head: LocalHead) -> Generator[str, None, Result]:
        result = yield from self._start_ray_locally(ray, head)
        if not result.ok or self.vector_store is None:
            return result
        return (yield from self._start_vector_store(result))

    def _start_vector_store(self, ray_result: Result) -> Generator[str, None, Result]:
        """Milvus Lite beside the head, when the .env's vector store is this machine."""
        assert self.vector_store is not None
        self.step = "Starting Milvus Lite"
        said: list[str] = []
        try:
            message = vectordb.start(self.vector_store, said.append)
        except RuntimeError as error:
            yield from said
            return Result(
                Outcome.FAILED, f"{ray_result.message} But the vector store did not start: {error}"
            )
        yield from said
        yield message
        return Result(ray_result.outcome, f"{ray_result.message} {message}")

    def _start_ray_locally(self, ray: str, head: LocalHead) -> Generator[str, None, Result]:
        self.step = "Checking"
        if self._client.healthy():
            return self._already_up()
        for port, variable in head.ports().items():
            if port_in_use(port):
                return Result(
                    Outcome.FAILED,
                    f"Port {port} ({variable}) is already in use on this machine: "
                    "stop what listens there or choose another port in the .env.",
                )
        argv = head.start_argv(ray)
        code, tail = yield from self._command("ray start", argv, self._timeouts.ray_start)
        if code != 0:
            return _command_failed("ray start", code, tail)
        return (yield from self._until_up("ray start", 1, Outcome.FAILED))

    def _start_cluster(self, ray: str, config: ClusterFile) -> Generator[str, None, Result]:
        self.step = "Checking"
        if self._client.healthy():
            return self._already_up()
        self._environment[SSH_WAIT_KEY] = f"{config.ssh_wait_s:g}"  # bounded, unlike Ray's 900 s
        timeout = config.ssh_wait_s + self._timeouts.ray_up
        code, tail = yield from self._command("ray up", config.start_argv(ray), timeout)
        if code != 0:
            return _command_failed("ray up", code, tail)
        expected = config.expected_nodes if self._wait else 1
        return (yield from self._until_up("ray up", expected, Outcome.UNREACHABLE))

    def _stop_local(self, ray: str, head: LocalHead) -> Generator[str, None, Result]:
        self.step = "Checking"
        found = ray_processes()
        if not found and not self._client.healthy():
            stopped = vectordb.stop(self.vector_store) if self.vector_store else None
            nothing = "No Ray processes run on this machine: nothing to stop."
            return Result(Outcome.OK, f"{nothing} {stopped}" if stopped else nothing)
        argv = head.stop_argv(ray)
        code, tail = yield from self._command("ray stop", argv, self._timeouts.ray_stop)
        if code != 0:
            return _command_failed("ray stop", code, tail)
        yield f"Checking that Ray is gone from this machine and from {self._url}"
        gone = self._until(
            "Waiting for Ray to go", lambda: not ray_processes() and not self._client.healthy()
        )
        if not gone:
            return Result(
                Outcome.FAILED,
                f"ray stop finished but Ray processes still run or {self._url} still answers.",
            )
        message = f"Stopped {len(found)} Ray processes; nothing answers at {self._url}."
        stopped = vectordb.stop(self.vector_store) if self.vector_store else None
        if stopped:
            yield stopped
        return Result(Outcome.OK, f"{message} {stopped}" if stopped else message)

    def _stop_cluster(self, ray: str, config: ClusterFile) -> Generator[str, None, Result]:
        argv = config.stop_argv(ray)
        code, tail = yield from self._command("ray down", argv, self._timeouts.ray_down)
        if code != 0:
            return _command_failed("ray down", code, tail)
        yield f"Checking that the dashboard at {self._url} no longer answers"
        if not self._until("Waiting for the head to go", lambda: not self._client.healthy()):
            return Result(
                Outcome.FAILED,
                f"ray down finished but {self._url} still answers: Ray may still run on the head.",
            )
        return Result(Outcome.OK, f"The cluster is down: nothing answers at {self._url}.")

    # -- steps -------------------------------------------------------------------------------

    def _command(
        self, name: str, argv: Sequence[str], timeout: float
    ) -> Generator[str, None, tuple[int, list[str]]]:
        """Run one Ray command, yielding its lines; its exit code and last lines at the end."""
        self._check_cancel()
        self.step = name
        yield "$ " + shlex.join(["ray", *argv[1:]])
        try:
            stream = ProcessStream(argv, self._environment)
        except OSError as error:
            raise _Ended(Result(Outcome.FAILED, f"Could not run {argv[0]}: {error}.")) from None
        tail: deque[str] = deque(maxlen=_TAIL_LINES)
        try:
            for line in stream.lines(time.monotonic() + timeout, self._cancelled):
                tail.append(line)
                marker = step_marker(line)
                if marker:
                    self.step = f"{name} {marker}"
                yield line
        except StreamTimeout:
            message = f"{name} did not finish within {timeout:g} s and was stopped."
            raise _Ended(Result(Outcome.FAILED, message)) from None
        except StreamCancelled:
            raise _Ended(self._cancelled_result()) from None
        finally:
            if stream.returncode is None:  # abandoned mid-run: leave nothing running
                stream.terminate()
        code = stream.returncode
        return (-1 if code is None else code), list(tail)

    def _until_up(self, name: str, nodes: int, unanswered: Outcome) -> Generator[str, None, Result]:
        """After a start: the dashboard answers and reports at least `nodes` nodes alive."""
        yield f"Waiting for the dashboard at {self._url} to report {nodes} node(s) alive"
        if not self._until("Waiting for the dashboard", self._client.healthy):
            limit = self._timeouts.dashboard
            return Result(
                unanswered,
                f"{name} finished but the dashboard at {self._url} did not answer within "
                f"{limit:g} s (set OPENRAG_TUI_DASHBOARD_URL if it listens elsewhere).",
            )
        limit = self._timeouts.nodes if nodes > 1 else self._timeouts.dashboard
        if not self._until("Waiting for the nodes", lambda: self._alive() >= nodes, limit):
            return Result(
                Outcome.FAILED,
                f"Only {self._alive()} of {nodes} nodes joined within {limit:g} s.",
            )
        return Result(
            Outcome.OK, f"The cluster is up: {self._alive()} node(s) alive at {self._url}."
        )

    def _until(
        self, step: str, condition: Callable[[], bool], timeout: float | None = None
    ) -> bool:
        """Poll `condition` until it holds (True) or `timeout` passes (False); a cancel ends it."""
        self.step = step
        deadline = time.monotonic() + (timeout or self._timeouts.dashboard)
        while not condition():
            if time.monotonic() > deadline:
                return False
            if self._cancelled.wait(_POLL_S):
                raise _Ended(self._cancelled_result())
        return True

    # -- small helpers -------------------------------------------------------------------

    @property
    def _url(self) -> str:
        return self._client.display_url

    def _alive(self) -> int:
        try:
            return alive_nodes(self._client.get_json(ENDPOINTS["nodes_detail"]))
        except DashboardError:
            return 0

    def _already_up(self) -> Result:
        return Result(
            Outcome.OK, f"A Ray cluster already answers at {self._url}: nothing to start."
        )

    def _check_cancel(self) -> None:
        if self._cancelled.is_set():
            raise _Ended(self._cancelled_result())

    def _cancelled_result(self) -> Result:
        return Result(
            Outcome.CANCELLED,
            f"Cancelled after {self.elapsed:.0f} s during {self.step}; "
            "stop the cluster to clean up anything it left.",
        )


def start_run(
    target: Target,
    settings: Settings,
    env_path: Path,
    client: DashboardClient,
    *,
    wait: bool = False,
    timeouts: Timeouts | None = None,
) -> ClusterRun:
    """A run that starts `target` (and, for a local head, the embedded vector store when the
    .env's Milvus is this machine); with `wait`, until every node its cluster.yaml joined."""
    environment = ray_environment(settings, env_path)
    store = vectordb.embedded(settings) if isinstance(target, LocalHead) else None
    return ClusterRun(
        "start", target, environment, client, wait=wait, timeouts=timeouts, vector_store=store
    )


def stop_run(
    target: Target,
    settings: Settings,
    env_path: Path,
    client: DashboardClient,
    *,
    timeouts: Timeouts | None = None,
) -> ClusterRun:
    """A run that stops `target` (and our embedded vector store, if we started one). A local
    stop ends every Ray process on this machine: show `ray_processes()` and ask first."""
    environment = ray_environment(settings, env_path)
    store = vectordb.embedded(settings) if isinstance(target, LocalHead) else None
    return ClusterRun("stop", target, environment, client, timeouts=timeouts, vector_store=store)


def alive_nodes(nodes_detail: Any) -> int:
    """How many nodes `/api/v0/nodes?detail=1` reports ALIVE."""
    rows = nodes_detail["data"]["result"]["result"]
    return sum(1 for row in rows if row.get("state") == "ALIVE")


def _command_failed(name: str, code: int, tail: list[str]) -> Result:
    reason = failure_reason(tail) or "it printed nothing"
    return Result(Outcome.FAILED, f"{name} failed (exit {code}): {reason}.")
