"""The planner on a real cluster declaring two GPUs (4 GB each, given): the guide's example,
and with a reserve a share that lets Ray place three actors per GPU and never a fourth."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openrag_tui.cluster.dashboard import DashboardClient
from openrag_tui.cluster.refresh import read_state
from openrag_tui.config import EnvFile
from tests.support.cli import run_cli
from tests.support.raycluster import TestCluster, running_cluster, wait_until

ENV = """\
RAY_POOL_SIZE=1
RAY_NUM_GPUS=0.1 # the share before the plan
RAY_MAX_TASKS_PER_WORKER=2
MARKER_POOL_SIZE=0
MARKER_NUM_GPUS=0.01
OPENRAG_TUI_NAMESPACE={namespace}
RAY_HEAD_ADDRESS={address}
OPENRAG_TUI_DASHBOARD_URL={dashboard}
"""


@pytest.fixture(scope="module")
def two_gpus() -> Iterator[TestCluster]:
    with running_cluster(node_gpus=(2,), cpus_per_node=2) as cluster:
        yield cluster


@pytest.fixture
def env_file(two_gpus: TestCluster, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / ".env"
    path.write_text(ENV.format(
        namespace=f"ortui-plan-{uuid.uuid4().hex[:8]}", address=two_gpus.gcs_address,
        dashboard=two_gpus.dashboard_url,
    ))  # fmt: skip
    try:
        yield path
    finally:
        run_cli("pools", "teardown", "--yes", env_file=path, env=_env(two_gpus))


def _env(cluster: TestCluster) -> dict[str, str]:
    import os

    return {**os.environ, **cluster.env}


def plan(cluster: TestCluster, env_file: Path, *args: str) -> dict:
    done = run_cli("plan", "--gpu-gb", "4", "--indexer-gb", "1", *args, "--json",
                   env_file=env_file, env=_env(cluster), timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def gpu_requests(cluster: TestCluster, namespace: str) -> list[float]:
    """The GPU share of each alive indexer actor of the namespace, as the dashboard says."""
    client = DashboardClient(cluster.dashboard_url)
    try:
        actors = read_state(client).actors
    finally:
        client.close()
    return sorted(
        actor.gpus
        for actor in actors
        if actor.state == "ALIVE" and actor.namespace == namespace and actor.pool == "indexer"
    )


def test_the_guides_example_on_two_4_gb_gpus(two_gpus: TestCluster, env_file: Path) -> None:
    found = plan(two_gpus, env_file)
    assert found["recommended"]["RAY_NUM_GPUS"] == "0.25"
    assert found["recommended"]["RAY_POOL_SIZE"] == "8"
    assert found["fit"]["indexer"] == {"size": 8, "run": 8, "wait": 0}
    assert found["applied"] is None
    assert EnvFile.read(env_file).values["RAY_POOL_SIZE"] == "1"  # a plan alone writes nothing


def test_with_a_reserve_three_fit_per_gpu_and_ray_places_no_fourth(
    two_gpus: TestCluster, env_file: Path
) -> None:
    namespace = EnvFile.read(env_file).values["OPENRAG_TUI_NAMESPACE"]
    deployed = run_cli("pools", "deploy", env_file=env_file, env=_env(two_gpus), timeout=180)
    assert deployed.returncode == 0, deployed.stderr
    assert gpu_requests(two_gpus, namespace) == [0.1]

    found = plan(two_gpus, env_file, "--reserve-gb", "1", "--apply")
    assert found["recommended"]["RAY_NUM_GPUS"] == "0.3333"
    assert found["recommended"]["RAY_POOL_SIZE"] == "6"
    assert found["applied"]["pools"]["indexer"]["outcome"] == "reached"
    values = EnvFile.read(env_file).values
    assert (values["RAY_NUM_GPUS"], values["RAY_POOL_SIZE"]) == ("0.3333", "6")
    assert gpu_requests(two_gpus, namespace) == [0.3333] * 6  # the 0.1 actor was replaced

    more = run_cli("scale", "indexer", "7", "--no-wait", env_file=env_file, env=_env(two_gpus))
    assert more.returncode == 0, more.stderr

    def seventh_waits() -> bool:
        status = run_cli("status", "--json", env_file=env_file, env=_env(two_gpus))
        pending = json.loads(status.stdout)["pending"]
        return any(item["reason"] == "waiting" for item in pending)

    wait_until(seventh_waits, 60, "the seventh actor reported waiting for room")
    assert gpu_requests(two_gpus, namespace) == [0.3333] * 6
