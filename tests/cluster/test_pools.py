"""The pools on the real two-node cluster: live resizes lose nothing, deaths are healed.

One deployment (namespace `ortui-test-<uuid>`, 0.1 GPU per actor) serves the module and is torn
down at its end, so the shared cluster is left as found. Tests set the sizes they need first.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import ray

from openrag_tui.config import EnvFile, Settings
from openrag_tui.pools import control
from openrag_tui.pools.lease import PoolClient
from openrag_tui.pools.roster import Phase, PoolState
from openrag_tui.pools.supervisor import LEASE_TTL_SECONDS
from tests.support.cli import run_cli
from tests.support.raycluster import TestCluster, wait_until

NAMESPACE = f"ortui-test-{uuid.uuid4().hex[:8]}"
ENV = """\
# pools for the live tests
RAY_POOL_SIZE=2
RAY_NUM_GPUS=0.1 # a tenth of a GPU each
RAY_MAX_TASKS_PER_WORKER=2
MARKER_POOL_SIZE=1
MARKER_NUM_GPUS=0.1
MARKER_MAX_PROCESSES=2
MARKER_MIN_PROCESSES=1
MARKER_MAX_TASKS_PER_CHILD=3
OPENRAG_TUI_NAMESPACE={namespace}
RAY_HEAD_ADDRESS={address}
"""


@dataclass(frozen=True)
class Deployment:
    cluster: TestCluster
    env_file: Path


def cli(*args: str, env_file: Path):
    """The real command, its log file kept beside the .env."""
    return run_cli(*args, env_file=env_file)


def write_env(folder: Path, cluster: TestCluster, namespace: str, extra: str = "") -> Path:
    path = folder / ".env"
    path.write_text(ENV.format(namespace=namespace, address=cluster.gcs_address) + extra)
    return path


def named_actors(namespace: str) -> set[str]:
    return {
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["namespace"] == namespace
    }


def end_namespace(namespace: str) -> None:
    """Kill whatever a failed test left in a namespace of ours."""
    for name in named_actors(namespace):
        ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)


def resize(pool: str, size: int) -> PoolState:
    result = control.scale(pool, size, timeout=60)
    assert result.outcome == "reached", result
    return result.state


def worker(name: str) -> ray.actor.ActorHandle:
    return ray.get_actor(name, namespace=NAMESPACE)


@pytest.fixture(scope="module")
def pools(
    ray_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    env_file = write_env(tmp_path_factory.mktemp("pools"), ray_cluster, NAMESPACE)
    settings = Settings.from_envfile(EnvFile.read(env_file))
    control.connect(settings)
    try:
        control.deploy(settings)
        for pool, size in (("indexer", 2), ("marker", 1)):
            assert control.wait_for(pool, size, timeout=60).outcome == "reached"
        yield Deployment(ray_cluster, env_file)
    finally:
        control.teardown()
        end_namespace(NAMESPACE)
        assert named_actors(NAMESPACE) == set()
        ray.shutdown()


def test_scaling_up_and_down_while_tasks_run_completes_each_task_once(pools: Deployment) -> None:
    before = resize("indexer", 2)
    original = pools.env_file.read_bytes()
    refs = {task_id: control.submit("indexer", "sleep", 0.5, task_id) for task_id in range(48)}
    wait_until(lambda: control.state("indexer").waiting, 10, "callers waiting for a slot")

    up = cli("scale", "indexer", "4", "--json", env_file=pools.env_file)
    assert up.returncode == 0, up.stderr
    grown = json.loads(up.stdout)["state"]
    assert grown["alive"] == 4 and grown["in_flight"], "the first tasks should still be running"
    refs.update({n: control.submit("indexer", "sleep", 0.5, n) for n in range(48, 72)})
    wait_until(lambda: control.state("indexer").in_flight == 8, 10, "all 8 slots busy")
    seen: list[PoolState] = []
    down = control.scale("indexer", 2, timeout=60, on_progress=seen.append)

    assert {task_id: ray.get(ref, timeout=60) for task_id, ref in refs.items()} == {
        task_id: task_id for task_id in refs
    }
    assert down.outcome == "reached"
    assert (seen[0].retiring, seen[0].in_flight) == (2, 8)  # retirees finish their tasks
    after = control.state("indexer")
    assert after.completed - before.completed == len(refs)
    assert (after.retried, after.lost) == (before.retried, before.lost)
    changed = [
        (old, new)
        for old, new in zip(
            original.splitlines(keepends=True),
            pools.env_file.read_bytes().splitlines(keepends=True),
            strict=True,
        )
        if old != new
    ]
    assert changed == [(b"RAY_POOL_SIZE=2\n", b"RAY_POOL_SIZE=4\n")]


def test_a_killed_actor_is_replaced_and_its_tasks_retried(pools: Deployment) -> None:
    before = resize("indexer", 2)
    refs = [control.submit("indexer", "sleep", 1.0, task_id) for task_id in range(4)]
    busy = wait_until(
        lambda: control.state("indexer").in_flight == 4 and control.state("indexer").members,
        10,
        "every slot busy",
    )
    victim = busy[0].name
    ray.kill(worker(victim))

    assert sorted(ray.get(refs, timeout=60)) == [0, 1, 2, 3]
    after = wait_until(
        lambda: (state := control.state("indexer")).settled and state.alive == 2 and state,
        30,
        "the pool back at 2 alive",
    )
    assert victim not in after.names(Phase.ALIVE)
    assert after.lost == before.lost + 1
    assert after.retried == before.retried + 2  # the two tasks the victim held
    assert after.completed == before.completed + 4


def test_a_failing_task_fails_once_and_is_not_retried(pools: Deployment) -> None:
    before = control.state("indexer")
    with pytest.raises(RuntimeError, match="broken input"):
        control.run("indexer", "fail", "broken input", timeout=30)
    after = control.state("indexer")
    assert (after.retried, after.lost) == (before.retried, before.lost)


def test_concurrent_resizes_converge_without_orphans(pools: Deployment) -> None:
    resize("indexer", 2)
    sizes = (3, 0, 4, 1)
    with ThreadPoolExecutor(len(sizes)) as threads:
        results = list(threads.map(lambda n: control.scale("indexer", n, timeout=60), sizes))

    final = wait_until(
        lambda: (state := control.state("indexer")).settled and state, 60, "the pool settled"
    )
    assert final.target in sizes
    assert {r.outcome for r in results} <= {"reached", "superseded"}
    assert any(r.requested == final.target and r.outcome == "reached" for r in results)
    alive = set(final.names(Phase.ALIVE))
    assert len(alive) == final.target
    wait_until(  # retired actors end themselves: their names go a moment later (none may stay
        # when the last resize to land was to 0: the condition is the equality, never the set)
        lambda: {n for n in named_actors(NAMESPACE) if n.startswith("ortui-indexer-")} == alive,
        60,
        "the retired actors to end",
    )


def test_a_restarted_supervisor_adopts_the_pools_actors(pools: Deployment) -> None:
    before = resize("indexer", 2)
    ray.kill(ray.get_actor("ortui-supervisor-indexer", namespace=NAMESPACE), no_restart=False)
    after = wait_until(
        lambda: (state := control.state("indexer")).version < before.version and state.settled
        and state,
        30,
        "the restarted supervisor to adopt its actors",
    )  # fmt: skip
    assert after.target == 2
    assert set(after.names(Phase.ALIVE)) == set(before.names(Phase.ALIVE))
    assert control.run("indexer", "echo", "still here", timeout=30) == "still here"


def supervisor(pool: str) -> ray.actor.ActorHandle:
    return ray.get_actor(f"ortui-supervisor-{pool}", namespace=NAMESPACE)


async def in_thread(predicate, what: str, timeout: float = 30):
    """`wait_until` off the event loop, so the client's tasks go on meanwhile."""
    return await asyncio.to_thread(wait_until, predicate, timeout, what)


def test_a_leasing_caller_runs_each_task_once_through_resizes(pools: Deployment) -> None:
    """Tasks run on the actors directly, on leased slots: a grown pool's new actors get work,
    a shrunk pool's retirees finish theirs and end, and idle slots go back afterwards."""
    before = resize("indexer", 2)

    async def scenario() -> tuple[list[int], control.ScaleResult, list[PoolState]]:
        client = PoolClient("indexer")
        tasks = [asyncio.create_task(client.run("sleep", 0.3, n)) for n in range(60)]
        await in_thread(lambda: sum(client.held().values()) == 4, "the lease of every slot")
        await asyncio.to_thread(resize, "indexer", 4)
        await in_thread(lambda: sum(client.held().values()) == 8, "the new actors' slots")
        seen: list[PoolState] = []
        down = await asyncio.to_thread(control.scale, "indexer", 2, True, 60, seen.append)
        results = await asyncio.gather(*tasks)
        await client.close()
        return results, down, seen

    results, down, seen = asyncio.run(scenario())
    assert sorted(results) == list(range(60))
    assert down.outcome == "reached"
    assert seen[0].retiring == 2 and seen[0].in_flight == 8  # the retirees' slots were held
    after = wait_until(
        lambda: (state := control.state("indexer")).in_flight == 0
        and state.completed - before.completed == 60
        and state,
        10,
        "the idle slots given back and the tasks counted",
        every=0.5,
    )  # fmt: skip
    assert (after.retried, after.lost) == (before.retried, before.lost)


def test_a_leasing_callers_task_on_a_killed_actor_runs_again_elsewhere(pools: Deployment) -> None:
    before = resize("indexer", 2)

    async def scenario() -> tuple[list[int], str]:
        client = PoolClient("indexer")
        tasks = [asyncio.create_task(client.run("sleep", 1.0, n)) for n in range(4)]
        await in_thread(lambda: sum(client.held().values()) == 4, "every slot leased")
        victim = sorted(client.held())[0]
        ray.kill(worker(victim))
        results = await asyncio.gather(*tasks)
        await client.close()
        return results, victim

    results, victim = asyncio.run(scenario())
    assert sorted(results) == [0, 1, 2, 3]
    after = wait_until(
        lambda: (state := control.state("indexer")).settled and state.alive == 2
        and state.retried == before.retried + 2 and state,
        30,
        "the pool back at 2 alive, the victim's two tasks counted as retried",
    )  # fmt: skip
    assert victim not in after.names(Phase.ALIVE)
    assert after.lost == before.lost + 1


def test_callers_that_stop_waiting_for_a_slot_take_none(pools: Deployment) -> None:
    """A freed slot goes to the next waiting task; a task cancelled while it waits is
    skipped: the others each run once, and every slot goes back."""
    before = resize("indexer", 2)

    async def scenario() -> tuple[list[int], list[bool]]:
        client = PoolClient("indexer")
        tasks = [asyncio.create_task(client.run("sleep", 0.2, n)) for n in range(12)]
        await in_thread(lambda: sum(client.held().values()) == 4, "every slot leased")
        for task in tasks[4::2]:  # waiting: the four slots run tasks 0-3
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        kept = [n for n in outcomes if isinstance(n, int)]
        return kept, [isinstance(n, asyncio.CancelledError) for n in outcomes]

    kept, cancelled = asyncio.run(scenario())
    assert kept == [0, 1, 2, 3, 5, 7, 9, 11]
    assert cancelled == [False] * 4 + [True, False] * 4
    wait_until(
        lambda: (
            (state := control.state("indexer")).in_flight == 0
            and state.completed - before.completed == 8
        ),
        10,
        "every slot given back and only the tasks that ran counted",
        every=0.5,
    )


def test_a_leasing_callers_results_and_failures_arrive_as_awaiting_them_gives_them(
    pools: Deployment,
) -> None:
    """`PoolClient` takes results from Ray's callback itself (`lease.arrival`): a task's own
    failure is raised once as `await ref` raises it (RayTaskError, and the error's own class),
    and a task cancelled while it runs gives its slot back for the next."""
    before = resize("indexer", 1)

    async def scenario() -> tuple[BaseException, list[object], dict[str, int], list[object]]:
        unhandled: list[object] = []  # what the loop's callbacks raised (a late settle, say)
        asyncio.get_running_loop().set_exception_handler(
            lambda _, context: unhandled.append(context)
        )
        client = PoolClient("indexer")
        with pytest.raises(RuntimeError, match="broken input") as raised:
            await client.run("fail", "broken input")
        running = [asyncio.create_task(client.run("sleep", 1.0, n)) for n in range(2)]
        await in_thread(lambda: sum(client.held().values()) == 2, "both slots running")
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        after_cancel = client.held()
        results = await asyncio.gather(*(client.run("echo", n) for n in range(4)))
        results.append(await client.run("sleep", 1.5, "after"))  # the cancelled ones end first
        await client.close()
        return raised.value, results, after_cancel, unhandled

    error, results, after_cancel, unhandled = asyncio.run(scenario())
    assert isinstance(error, ray.exceptions.RayTaskError)
    assert results == [0, 1, 2, 3, "after"] and sum(after_cancel.values()) == 2  # idle, held
    assert unhandled == []  # the cancelled tasks' results arrived and were dropped quietly
    after = wait_until(
        lambda: (state := control.state("indexer")).in_flight == 0 and state,
        10,
        "every slot given back",
        every=0.5,
    )
    assert (after.retried, after.lost) == (before.retried, before.lost)


def test_leases_of_callers_gone_are_freed(pools: Deployment) -> None:
    """A caller that restarts under its name frees its old lease at once; an anonymous one
    that went silent loses its lease after LEASE_TTL_SECONDS. Neither leaves the pool full."""
    resize("indexer", 2)
    ray.get(supervisor("indexer").lease.remote("ghost", "x", 1))
    ray.get(supervisor("indexer").lease.remote("coordinator-test", "before", 3))
    assert control.state("indexer").in_flight == 4  # every slot held by callers now gone

    async def restarted() -> str:
        client = PoolClient("indexer", holder="coordinator-test")
        result = await client.run("echo", "ran")
        await client.close()
        return result

    assert asyncio.run(asyncio.wait_for(restarted(), 20)) == "ran"
    assert control.state("indexer").in_flight == 1  # the ghost's
    wait_until(
        lambda: control.state("indexer").in_flight == 0,
        LEASE_TTL_SECONDS * 2,
        "the silent caller's lease to lapse",
    )


def test_marker_subprocesses_are_recycled_after_max_tasks_per_child(pools: Deployment) -> None:
    (name,) = resize("marker", 1).names(Phase.ALIVE)
    pids = [control.run("marker", "pid", timeout=30) for _ in range(9)]

    per_child = Counter(pids)
    assert max(per_child.values()) <= 3  # MARKER_MAX_TASKS_PER_CHILD
    assert len(per_child) >= 3
    assert ray.get(worker(name).stats.remote())["pid"] not in per_child


def test_a_killed_marker_subprocess_resets_the_pool_and_work_continues(pools: Deployment) -> None:
    (name,) = resize("marker", 1).names(Phase.ALIVE)
    marker = worker(name)
    resets = ray.get(marker.stats.remote())["resets"]
    child = control.run("marker", "pid", timeout=30)
    os.kill(child, signal.SIGKILL)
    wait_until(
        lambda: child not in ray.get(marker.stats.remote())["children"], 10, "the child gone"
    )

    assert [control.run("marker", "echo", n, timeout=30) for n in range(2)] == [0, 1]
    stats = ray.get(marker.stats.remote())
    assert stats["resets"] == resets + 1
    assert stats["children"] and child not in stats["children"]


def test_marker_subprocesses_end_with_their_actor(pools: Deployment) -> None:
    resize("marker", 1)
    child = control.run("marker", "pid", timeout=30)
    resize("marker", 0)

    def gone() -> bool:
        try:
            return psutil.Process(child).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, 15, f"subprocess {child} to exit after its actor ended")
    resize("marker", 1)


def test_a_target_beyond_capacity_stays_pending_and_status_says_why(
    ray_cluster: TestCluster, tmp_path: Path
) -> None:
    """Marker actors of 2 whole GPUs: the cluster (4 + 2 GPUs, some slivers taken) holds 3 at
    most, so asking for 4 leaves at least one pending, in a namespace of its own."""
    namespace = f"{NAMESPACE}-capacity"
    env_file = write_env(tmp_path, ray_cluster, namespace, "MARKER_NUM_GPUS=2\n")
    env_file.write_text(
        env_file.read_text().replace("RAY_POOL_SIZE=2", "RAY_POOL_SIZE=0")
        .replace("MARKER_POOL_SIZE=1", "MARKER_POOL_SIZE=0")
    )  # fmt: skip
    try:
        deployed = cli("pools", "deploy", "--json", env_file=env_file)
        assert deployed.returncode == 0, deployed.stderr

        scaled = cli(
            "scale", "marker", "4", "--timeout", "4", "--json",
            "--dashboard", ray_cluster.dashboard_url, env_file=env_file,
        )  # fmt: skip
        assert scaled.returncode == 1, scaled.stderr  # not reached
        report = json.loads(scaled.stdout)
        state = report["state"]
        assert report["outcome"] == "unsettled"
        assert state["alive"] + state["pending"] == 4 and state["pending"] >= 1
        assert 1 <= len(report["why_pending"]) <= state["pending"]  # some may still be starting
        assert {item["reason"] for item in report["why_pending"]} <= {"waiting", "infeasible"}
        assert b"MARKER_POOL_SIZE=4\n" in env_file.read_bytes()

        status = subprocess.run(
            [sys.executable, "-m", "openrag_tui", "status", "--json", "--env", str(env_file),
             "--dashboard", ray_cluster.dashboard_url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        pending = [
            item for item in json.loads(status.stdout)["pending"] if item["namespace"] == namespace
        ]
        assert {item["name"] for item in pending} == {i["name"] for i in report["why_pending"]}
        for item in pending:
            assert (item["class_name"], item["pool"]) == ("TuiMarkerWorker", "marker")
            assert item["reason"] in ("waiting", "infeasible") and "GPU" in item["detail"]

        pools = cli("pools", "status", "--json", env_file=env_file)
        assert pools.returncode == 0, pools.stderr
        marker = json.loads(pools.stdout)["marker"]
        assert (marker["target"], marker["alive"] + marker["pending"]) == (4, 4)

        ended = cli("pools", "teardown", "--yes", env_file=env_file)
        assert ended.returncode == 0, ended.stderr
        assert named_actors(namespace) == set()
    finally:
        end_namespace(namespace)


def _status(deployment: Deployment) -> dict:
    result = cli(
        "status", "--json", "--dashboard", deployment.cluster.dashboard_url,
        env_file=deployment.env_file,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_retired_actors_are_no_deaths_but_a_killed_one_is_with_its_cause(
    pools: Deployment,
) -> None:
    """A scale-down ends its actors as intended exits: nothing to warn about. An actor killed
    by hand is a death, with Ray's cause, in the warnings and in `deaths`."""

    def ours(status: dict) -> list[dict]:  # the deaths of this module's namespace, but not
        return [  # those of other tests' kills
            d
            for d in status["deaths"]
            if d["namespace"] == NAMESPACE and d["actor_id"] not in earlier
        ]

    earlier: set[str] = set()
    earlier = {death["actor_id"] for death in ours(_status(pools))}
    resize("indexer", 3)
    resize("indexer", 1)
    try:
        wait_until(
            lambda: (
                len({n for n in named_actors(NAMESPACE) if n.startswith("ortui-indexer-")}) == 1
            ),
            30,
            "the retired actors to end",
        )
    except TimeoutError:
        print("DEBUG", named_actors(NAMESPACE), control.state("indexer"))
        raise
    assert ours(_status(pools)) == []
    (victim,) = control.state("indexer").names(Phase.ALIVE)
    ray.kill(ray.get_actor(victim))
    status = wait_until(lambda: ours(s := _status(pools)) and s, 30, "the kill in the listing")
    (death,) = ours(status)
    assert (death["name"], death["pool"], death["owner"], death["reason"]) == (
        victim, "indexer", "openrag-tui", "killed",
    )  # fmt: skip
    assert death["cause"] == "killed by a user (ray.kill)"
    assert any("killed by a user (ray.kill)" in warning for warning in status["warnings"])
    indexer = next(pool for pool in status["pools"] if pool["name"] == "indexer")
    assert indexer["owners"]["openrag-tui"]["dead"] >= 1
    wait_until(lambda: control.state("indexer").alive == 1, 30, "the killed actor replaced")
