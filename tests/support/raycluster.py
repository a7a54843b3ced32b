"""A real multi-node Ray cluster on this machine, isolated for tests.

Every node gets its own ports, the whole cluster one temp dir (also used as RAY_TMPDIR so Ray's
`ray_current_cluster` file stays inside it), the dashboard binds 127.0.0.1, and auth is off.
Teardown kills only the processes this cluster started: never `ray stop`, which would end
every Ray process on the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except Exception as error:  # the condition may raise until it holds
            last_error = error
        else:
            if result:
                return result
        time.sleep(every)
    raise TimeoutError(
        f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})"
    )


@dataclass
class TestCluster:
    """What a test needs to know about a running cluster."""

    __test__ = False  # not a pytest test class

    gcs_address: str
    dashboard_url: str
    temp_dir: str
    node_gpus: tuple[float, ...]
    env: dict[str, str] = field(default_factory=dict)


_CLUSTER_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "0",
}


@contextmanager
def running_cluster(
    node_gpus: tuple[float, ...] = (4, 2), cpus_per_node: int = 2
) -> Iterator[TestCluster]:
    """Start a head and workers with declared GPUs; always tear them down."""
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="ortui-ray-", dir="/tmp")  # short: socket paths are limited
    saved_env = {key: os.environ.get(key) for key in (*_CLUSTER_ENV, "RAY_TMPDIR")}
    os.environ.update(_CLUSTER_ENV, RAY_TMPDIR=temp_dir)
    cluster = None
    try:
        cluster, dashboard_port = _start(Cluster, node_gpus, cpus_per_node, temp_dir)
        cluster.wait_for_nodes()
        url = f"http://127.0.0.1:{dashboard_port}"
        wait_until(
            lambda: _alive_nodes(url) == len(node_gpus), 60, "every node ALIVE in the dashboard"
        )
        yield TestCluster(
            gcs_address=cluster.address,
            dashboard_url=url,
            temp_dir=temp_dir,
            node_gpus=tuple(node_gpus),
            env={**_CLUSTER_ENV, "RAY_TMPDIR": temp_dir},
        )
    finally:
        if cluster is not None:
            import ray

            ray.shutdown()  # a driver left connected by a failed test would block the teardown
            cluster.shutdown()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp_dir, ignore_errors=True)


#: times a cluster is started before its failure to start fails the test (CI, 2026-12-05: both
#: of two attempts failed once, a dashboard aborting while the suite loaded the box)
START_ATTEMPTS = 3


def _start(
    cluster_class: Any, node_gpus: tuple[float, ...], cpus_per_node: int, temp_dir: str
) -> tuple[Any, int]:
    """The cluster and its dashboard port. Under load a head sometimes fails to start (seen in
    CI: "The current node timed out during startup", and a GCS gone before its log existed):
    the processes of that attempt (found by its own folder, never by name) are ended and it
    starts once more on fresh ports."""
    for attempt in range(1, START_ATTEMPTS + 1):
        ray_dir = os.path.join(temp_dir, f"ray{attempt}" if attempt > 1 else "ray")
        os.makedirs(ray_dir, exist_ok=True)
        dashboard_port = free_port()
        try:
            cluster = cluster_class(
                initialize_head=True,
                head_node_args={
                    "num_cpus": cpus_per_node,
                    "num_gpus": node_gpus[0],
                    "include_dashboard": True,
                    "dashboard_host": "127.0.0.1",
                    "dashboard_port": dashboard_port,
                    "gcs_server_port": free_port(),
                    "dashboard_agent_listen_port": free_port(),
                    "temp_dir": ray_dir,
                },
            )
        except Exception as error:  # a raylet never registered, or the GCS died at birth
            logs = _logs_tail(ray_dir)  # gone with the temp dir once the test ends
            error.add_note(logs)
            if attempt == START_ATTEMPTS:
                raise
            print(f"cluster start, attempt {attempt} failed: {error}\n{logs}")
            _end_processes_in(ray_dir)
            continue
        for gpus in node_gpus[1:]:
            cluster.add_node(
                num_cpus=cpus_per_node, num_gpus=gpus, dashboard_agent_listen_port=free_port()
            )
        return cluster, dashboard_port
    raise AssertionError("unreachable")


def _logs_tail(ray_dir: str, lines: int = 15) -> str:
    """The last lines of a failed attempt's error logs, to tell why it failed."""
    found = []
    for path in sorted(Path(ray_dir).glob("session_[0-9]*/logs/*.err")):
        with contextlib.suppress(OSError):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            if tail:
                found.append(f"--- {path.name}\n" + "\n".join(tail))
    return "\n".join(found) or f"no error log under {ray_dir}"


def _end_processes_in(folder: str) -> None:
    """Our child processes whose command line names this attempt's folder."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(folder in part for part in child.cmdline()):
                child.kill()


def _alive_nodes(dashboard_url: str) -> int:
    response = requests.get(f"{dashboard_url}/api/v0/nodes?detail=1", timeout=2)
    response.raise_for_status()
    rows = response.json()["data"]["result"]["result"]
    return sum(1 for row in rows if row["state"] == "ALIVE")
