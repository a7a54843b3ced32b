"""Pools benchmark: resize latency, and dispatch overhead against `ray.util.ActorPool` (our
leased slots, as the coordinator uses them, and the supervisor's one-hop-more `run`; beside
them, "awaited": the actors awaited with no client at all, the bound of any asyncio caller).

Run on demand (the results go into docs/benchmarks.md by hand, with the machine's load):
    .venv/bin/python -m pytest tests/bench/test_pools_bench.py -m bench -s
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import ray
from ray.util import ActorPool

from openrag_tui.config import EnvFile, Settings
from openrag_tui.pools import control
from openrag_tui.pools.lease import PoolClient
from openrag_tui.pools.roster import Phase
from openrag_tui.pools.tasks import noop
from tests.support.raycluster import TestCluster, wait_until

pytestmark = pytest.mark.bench

ACTORS = 4
TASKS = 2_000
REPEATS = 3


def deployed(cluster: TestCluster, folder: Path, namespace: str, slots: int, size: int) -> None:
    env = folder / ".env"
    env.write_text(
        f"RAY_POOL_SIZE={size}\nRAY_NUM_GPUS=0.1\nRAY_MAX_TASKS_PER_WORKER={slots}\n"
        f"MARKER_POOL_SIZE=0\nOPENRAG_TUI_NAMESPACE={namespace}\n"
        f"RAY_HEAD_ADDRESS={cluster.gcs_address}\n"
    )
    settings = Settings.from_envfile(EnvFile.read(env))
    control.connect(settings)
    control.deploy(settings)
    assert control.wait_for("indexer", size, timeout=120).outcome == "reached"


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"ortui-bench-{uuid.uuid4().hex[:8]}"
    yield name
    control.teardown()
    ray.shutdown()


def timed_scale(size: int) -> float:
    started = time.perf_counter()
    assert control.scale("indexer", size, timeout=120).outcome == "reached"
    return time.perf_counter() - started


def test_resize_latency(ray_cluster: TestCluster, tmp_path: Path, namespace: str) -> None:
    deployed(ray_cluster, tmp_path, namespace, slots=5, size=1)
    steps: dict[str, list[float]] = {
        "+1 (1->2)": [],
        "+4 (2->6)": [],
        "-4 (6->2), idle": [],
        "-4 (6->2), busy": [],
    }
    for _ in range(REPEATS):
        steps["+1 (1->2)"].append(timed_scale(2))
        steps["+4 (2->6)"].append(timed_scale(6))
        steps["-4 (6->2), idle"].append(timed_scale(2))
        timed_scale(6)
        busy = [control.submit("indexer", "sleep", 0.5) for _ in range(6 * 5)]
        wait_until(lambda: control.state("indexer").in_flight == 30, 30, "every slot busy")
        steps["-4 (6->2), busy"].append(timed_scale(2))  # retirees finish their 0.5 s tasks
        ray.get(busy)
        timed_scale(1)
    print(f"\nresize latency, median of {REPEATS} (min-max), until all alive / all ended:")
    for step, times in steps.items():
        print(f"  {step:18} {statistics.median(times):6.2f} s ({min(times):.2f}-{max(times):.2f})")


@pytest.mark.parametrize("slots", [1, 5])
def test_dispatch_overhead_against_actor_pool(
    ray_cluster: TestCluster, tmp_path: Path, namespace: str, slots: int
) -> None:
    deployed(ray_cluster, tmp_path, namespace, slots=slots, size=ACTORS)
    handles = [
        ray.get_actor(name, namespace=namespace)
        for name in control.state("indexer").names(Phase.ALIVE)
    ]
    baseline = ActorPool(handles)

    def leased() -> None:  # what the coordinator does: slots leased, the actors called directly
        async def run_all() -> list[None]:
            client = PoolClient("indexer")
            results = await asyncio.gather(*(client.run("noop") for _ in range(TASKS)))
            await client.close()
            return results

        assert asyncio.run(run_all()) == [None] * TASKS

    def proxied() -> None:  # through the supervisor, one hop more per task (`control.submit`)
        assert ray.get([control.submit("indexer", "noop") for _ in range(TASKS)]) == [None] * TASKS

    def actor_pool() -> None:
        results = list(baseline.map_unordered(lambda a, _: a.run.remote(noop, ()), range(TASKS)))
        assert results == [None] * TASKS

    def awaited() -> None:  # no client: `slots` coroutines per actor, each awaiting its calls
        async def run_all() -> list[None]:  # what any asyncio caller pays Ray's bridge
            left = iter(range(TASKS))
            results: list[None] = []

            async def one_slot(handle: ray.actor.ActorHandle) -> None:
                for _ in left:
                    results.append(await handle.run.remote(noop, ()))

            await asyncio.gather(*(one_slot(handle) for handle in handles for _ in range(slots)))
            return results

        assert asyncio.run(run_all()) == [None] * TASKS

    runs = (
        ("leased", leased),
        ("proxied", proxied),
        ("awaited", awaited),
        ("ActorPool", actor_pool),
    )
    rates: dict[str, list[float]] = {name: [] for name, _ in runs}
    cpu: dict[str, list[float]] = {name: [] for name in rates}
    for _ in range(REPEATS):  # interleaved, so drifting load hits all alike
        for name, run in runs:
            rate, cpu_per_task = _rate(run)
            rates[name].append(rate)
            cpu[name].append(cpu_per_task)
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"\n{TASKS} no-op tasks over {ACTORS} actors, {slots} slot(s) each, median of {REPEATS}:")
    for name, rate in median.items():
        ratio = rate / median["ActorPool"]
        print(
            f"  {name:10} {rate:7.0f} tasks/s  ratio to ActorPool {ratio:.2f}  "
            f"caller's CPU {statistics.median(cpu[name]) * 1e6:4.0f} µs/task"
        )


def _rate(run: Callable[[], None]) -> tuple[float, float]:
    """Tasks per second, and the CPU the calling process spent per task (all its threads,
    Ray's own too): on 2 cores the caller's CPU is taken from the actors'."""
    started, cpu_started = time.perf_counter(), time.process_time()
    run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return TASKS / elapsed, cpu / TASKS
