"""Batches into OpenRAG: files/s into the API stand-in, whose tasks take 0 ms and 50 ms, against
the bound that back-pressure allows (capacity ÷ task time) in the same run.

Run on demand (results go into docs/benchmarks.md by hand, with the machine's load):
    .venv/bin/python -m pytest tests/bench/test_openrag_bench.py -m bench -s
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from pathlib import Path

import pytest
import ray

from openrag_tui.config import EnvFile, Settings
from openrag_tui.indexing import api
from openrag_tui.indexing.paths import Where
from openrag_tui.pools import control
from tests.support.openrag_server import running_openrag
from tests.support.raycluster import TestCluster, wait_until

pytestmark = pytest.mark.bench

SLOTS = 8
FILES = int(os.environ.get("ORTUI_BENCH_FILES", "400"))


def run(cluster: TestCluster, folder: Path, task_seconds: float) -> tuple[float, int]:
    """Seconds from submitting until every file is COMPLETED; the most tasks active at once."""
    with running_openrag(total_slots=SLOTS, task_seconds=task_seconds) as openrag:
        (folder / "data" / "docs").mkdir(parents=True)
        for n in range(FILES):
            (folder / "data" / "docs" / f"f{n}.txt").write_text(f"file {n}\n")
        env = folder / ".env"
        env.write_text(
            f"DATA_VOLUME=./data\nOPENRAG_TUI_TARGET=openrag\nOPENRAG_TUI_OPENRAG_URL={openrag.url}\n"
            f"OPENRAG_TUI_NAMESPACE=ortui-obench-{uuid.uuid4().hex[:8]}\n"
            f"RAY_HEAD_ADDRESS={cluster.gcs_address}\n"
        )
        settings = Settings.from_envfile(EnvFile.read(env))
        control.connect(settings)
        where = Where.of(settings, folder)
        try:
            warm = api.submit(settings, where, api.plan_batch(settings, where, ["data/docs/f0.txt"],
                                                              "warm", cwd=folder))  # fmt: skip
            wait_until(lambda: api.get_batch(where, warm).finished, 60, "the warm-up")
            request = api.plan_batch(settings, where, [str(folder / "data" / "docs")], "docs")
            started = time.perf_counter()
            batch_id = api.submit(settings, where, request)
            progress = wait_until(
                lambda: (p := api.get_batch(where, batch_id)).finished and p, 600, "the batch",
                every=0.05,
            )  # fmt: skip
            seconds = time.perf_counter() - started
            assert progress.counts == {"COMPLETED": FILES}, progress.counts
            per_file = sorted(t.seconds or 0 for t in api.batch_files(where, batch_id))
            print(f"  per file p50 {statistics.median(per_file) * 1000:.0f} ms,"
                  f" p95 {per_file[int(len(per_file) * 0.95)] * 1000:.0f} ms")  # fmt: skip
            return seconds, openrag.record.max_active
        finally:
            api.stop_coordinator()
            ray.shutdown()


@pytest.mark.timeout(1800)
def test_files_per_second_against_the_back_pressure_bound(
    ray_cluster: TestCluster, tmp_path: Path
) -> None:
    print(f"\n{FILES} small files into the stand-in, {SLOTS} slots, cpus={os.cpu_count()}")
    for task_seconds in (0.0, 0.05):
        seconds, most = run(ray_cluster, tmp_path / f"t{task_seconds}", task_seconds)
        rate = FILES / seconds
        bound = f"{SLOTS / task_seconds:.0f}" if task_seconds else "∞"
        ratio = f"{rate / (SLOTS / task_seconds):.2f}" if task_seconds else "-"
        print(
            f"  tasks of {task_seconds * 1000:3.0f} ms: {rate:6.1f} files/s, bound {bound} files/s,"
            f" ratio {ratio}; most active at once {most} (capacity {SLOTS})"
        )
