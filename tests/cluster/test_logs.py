"""`logs` against the real two-node cluster: actors that print known lines, read back through
the dashboard's logs API by the real command, followed as they write, on both nodes.

The actors live in their own namespace (`ortui-logs-<uuid>`) and end at the module's end. They
are of class `TuiMarkerWorker`, so the cluster counts them in the marker pool: they end by
exiting (`exit_actor`, a death that is no news) rather than by `ray.kill`, which every later
status would warn about as a marker actor killed by a user.
A followed actor is made to write twice more after its follow ends: Ray frees a stream's
dashboard slot only when a write to the gone client fails (see openrag_tui/cluster/logs.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tests.support.cli import run_cli
from tests.support.raycluster import TestCluster, wait_until

RUN = uuid.uuid4().hex[:8]
NAMESPACE = f"ortui-logs-{RUN}"
HEAD, WORKER = f"ortui-logtest-{RUN}-head", f"ortui-logtest-{RUN}-worker"


@ray.remote(num_cpus=0)
class TuiMarkerWorker:
    """Prints what it is told, where it is told: the class name puts it in the marker pool."""

    def say(self, text: str, err: bool = False) -> int:
        print(text, file=sys.stderr if err else sys.stdout, flush=True)
        return os.getpid()

    def stdout_path(self) -> str:
        return os.readlink("/proc/self/fd/1")  # Ray points a worker's stdout at its .out file

    def leave(self) -> None:
        ray.actor.exit_actor()


@dataclass
class Cluster:
    url: str
    env_file: Path
    actors: dict[str, ray.actor.ActorHandle] = field(default_factory=dict)

    def start(self, name: str, node_id: str | None = None) -> ray.actor.ActorHandle:
        options: dict = {"name": name, "lifetime": "detached"}
        if node_id is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
        self.actors[name] = TuiMarkerWorker.options(**options).remote()
        ray.get(self.actors[name].say.remote(f"started {name}"), timeout=60)
        return self.actors[name]

    def say(self, name: str, text: str, err: bool = False) -> None:
        ray.get(self.actors[name].say.remote(text, err), timeout=30)

    def end(self, name: str) -> None:
        """The actor exits on purpose; killed only if it does not."""
        handle = self.actors.pop(name)
        try:
            ray.get(handle.leave.remote(), timeout=30)
        except ray.exceptions.RayActorError:
            return  # it exited
        except Exception:
            pass
        ray.kill(handle, no_restart=True)

    def logs(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("logs", *args, "--dashboard", self.url, env_file=self.env_file, timeout=60)


@pytest.fixture(scope="module")
def cluster(
    ray_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    env_file = tmp_path_factory.mktemp("logs") / ".env"
    env_file.write_text("# logs tests: only the dashboard is needed\n")
    ray.init(
        address=ray_cluster.gcs_address,
        namespace=NAMESPACE,
        log_to_driver=False,
        logging_level="ERROR",
    )
    found = Cluster(ray_cluster.dashboard_url, env_file)
    try:
        nodes = sorted(
            ray.nodes(), key=lambda node: "node:__internal_head__" not in node["Resources"]
        )
        found.start(HEAD, nodes[0]["NodeID"])
        found.start(WORKER, nodes[1]["NodeID"])
        yield found
    finally:
        for name in list(found.actors):
            found.end(name)
        ray.shutdown()


#: `python -c` that puts SIGINT at Python's default, as in an operator's terminal, then runs the
#: CLI. A run started in the background (under `nohup`, or `&` in a script) hands SIGINT down
#: ignored, Python leaves an ignored SIGINT ignored, and Ctrl-C would not end the follow. Not a
#: `preexec_fn`: that makes the child a plain fork of this process, whose Ray connection's gRPC
#: ran its fork handlers in it; once that aborted with "epoll_wait error: Bad file descriptor"
#: just before the exec, and the abort handler's alarm killed the follow 3 s later (SIGALRM).
_CTRL_C_AS_IN_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('openrag_tui', run_name='__main__', alter_sys=True)"
)


class Following:
    """`openrag-tui logs … --follow` as a child process, its output collected line by line."""

    def __init__(self, cluster: Cluster, *args: str) -> None:
        argv = [sys.executable, "-c", _CTRL_C_AS_IN_A_TERMINAL, "logs", *args, "--follow"]
        argv += ["--dashboard", cluster.url, "--env", str(cluster.env_file)]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "XDG_STATE_HOME": str(cluster.env_file.parent)},
        )
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _collect(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_for(self, line: str, where: str = "out") -> None:
        lines = self.out if where == "out" else self.err
        wait_until(
            lambda: line in lines or self.process.poll() is not None,
            60,
            f"{line!r} on the follow's std{where}",
        )
        assert line in lines, (self.process.returncode, self.out, self.err)

    def interrupt(self) -> int:
        """Ctrl-C, as an operator ends a follow: the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def test_logs_shows_the_last_lines_of_stdout_and_stderr(cluster: Cluster) -> None:
    for name in (HEAD, WORKER):  # one actor on each node: each node's agent reads its own
        cluster.say(name, f"out-{RUN}-{name}")
        cluster.say(name, f"err-{RUN}-{name}", err=True)
        result = cluster.logs(name, "--lines", "20")
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        lines = result.stdout.splitlines()
        assert f"out-{RUN}-{name}" in lines and f"err-{RUN}-{name}" in lines
        assert lines.index(f"out-{RUN}-{name}") < lines.index(f"err-{RUN}-{name}")
        assert not any(line.startswith((":actor_name:", ":job_id:")) for line in lines)

    only = cluster.logs(HEAD, "--lines", "1", "--only", "err")
    assert (only.returncode, only.stdout) == (0, f"err-{RUN}-{HEAD}\n")


def test_a_pool_is_its_actors_on_both_nodes_each_line_prefixed(cluster: Cluster) -> None:
    for name in (HEAD, WORKER):
        cluster.say(name, f"pool-{RUN}-{name}")
    result = cluster.logs("marker", "--lines", "3", "--only", "out")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    lines = result.stdout.splitlines()
    assert f"[{HEAD}] pool-{RUN}-{HEAD}" in lines and f"[{WORKER}] pool-{RUN}-{WORKER}" in lines
    assert all(line.startswith("[") for line in lines)


def test_follow_prints_the_lines_written_after_it_opened(cluster: Cluster) -> None:
    cluster.say(WORKER, f"ready-out-{RUN}")
    cluster.say(WORKER, f"ready-err-{RUN}", err=True)
    follow = Following(cluster, WORKER, "--lines", "1")
    try:
        follow.wait_for(f"ready-out-{RUN}")  # each log's tail came through its open stream
        follow.wait_for(f"ready-err-{RUN}")
        cluster.say(WORKER, f"new-out-{RUN}")
        cluster.say(WORKER, f"new-err-{RUN}", err=True)
        follow.wait_for(f"new-out-{RUN}")
        follow.wait_for(f"new-err-{RUN}")
        assert follow.interrupt() == 0
        assert follow.err == []
        assert sorted(follow.out) == sorted(
            [f"ready-out-{RUN}", f"ready-err-{RUN}", f"new-out-{RUN}", f"new-err-{RUN}"]
        )  # each log in order; the two logs interleave as written
        assert follow.out.index(f"ready-out-{RUN}") < follow.out.index(f"new-out-{RUN}")
        assert follow.out.index(f"ready-err-{RUN}") < follow.out.index(f"new-err-{RUN}")
    finally:
        follow.close()
        for text in ("free the stream's slot", "for good"):
            cluster.say(WORKER, text)
            cluster.say(WORKER, text, err=True)


def test_following_a_pool_notices_an_actor_that_died(cluster: Cluster) -> None:
    victim = f"ortui-logtest-{RUN}-victim"
    cluster.start(victim)
    follow = Following(cluster, "marker", "--lines", "1", "--only", "out")
    try:
        follow.wait_for(f"[{victim}] started {victim}")
        cluster.end(victim)
        follow.wait_for(f"openrag-tui: {victim} is not alive any more: no longer followed", "err")
        cluster.say(HEAD, f"after-the-death-{RUN}")  # the others are still followed
        follow.wait_for(f"[{HEAD}] after-the-death-{RUN}")
        assert follow.interrupt() == 0  # a death is news, not a failure of the command
    finally:
        follow.close()
        for text in ("free the stream's slot", "for good"):
            for name in (HEAD, WORKER):
                cluster.say(name, text)


def test_a_removed_log_is_one_line_and_exit_1(cluster: Cluster) -> None:
    name = f"ortui-logtest-{RUN}-removed"
    actor = cluster.start(name)
    cluster.say(name, f"kept-err-{RUN}", err=True)
    os.remove(ray.get(actor.stdout_path.remote(), timeout=30))
    result = cluster.logs(name)
    assert (result.returncode, result.stdout) == (1, f"kept-err-{RUN}\n")
    assert result.stderr == (
        f"openrag-tui: {name} has no stdout log file on its node (removed or rotated away)\n"
    )


def test_an_unknown_name_is_one_line_and_exit_2(cluster: Cluster) -> None:
    result = cluster.logs(f"ortui-logtest-{RUN}-nobody")
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1
    assert f"no actor named 'ortui-logtest-{RUN}-nobody' in the cluster" in result.stderr
