"""Benchmarks of the cluster view (run on demand; they print, they do not time-gate).

    .venv/bin/python -m pytest tests/bench/test_cluster_view_bench.py -m bench -s

1. `openrag-tui status --json` next to `ray status` on the same live cluster, same run.
2. parse + allocation + `status --json`'s text + render on generated payloads of 10, 100 and
   1,000 nodes (20 actors each), with the total of what `status --json` costs and its growth;
   before them, the decoding of the dashboard's bodies, beside `json.loads` of the same bodies.
"""

from __future__ import annotations

import compileall
import gc
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

import openrag_tui
from openrag_tui.cli.common import json_text
from openrag_tui.cluster.allocation import build_view
from openrag_tui.cluster.dashboard import UNDECODED, decoded
from openrag_tui.cluster.state import parse
from openrag_tui.cluster.summary import view_summary
from openrag_tui.render import render_view
from tests.support.raycluster import TestCluster
from tests.support.synthetic import GENERATED_POOLS, generate_payloads

pytestmark = pytest.mark.bench
RUNS = 5


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    return elapsed


def test_status_json_against_ray_status(ray_cluster: TestCluster, tmp_path: Path) -> None:
    """Both as an installed package runs them: with bytecode (pip compiles a wheel's modules at
    install; this checkout may run with PYTHONDONTWRITEBYTECODE, which would make our modules
    compile on every run and not Ray's). Alternated, so the box's drift hits both alike."""
    compileall.compile_dir(Path(openrag_tui.__file__).parent, quiet=1)
    env = tmp_path / ".env"
    env.write_text("RAY_POOL_SIZE=2\n")
    ray_bin = str(Path(sys.executable).parent / "ray")
    our_command = [sys.executable, "-m", "openrag_tui", "status", "--json", "--env", str(env),
                   "--dashboard", ray_cluster.dashboard_url]  # fmt: skip
    ray_command = [ray_bin, "status", "--address", ray_cluster.gcs_address]
    ours, theirs = [], []
    for _ in range(RUNS):
        ours.append(_seconds(our_command))
        theirs.append(_seconds(ray_command))
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    print(
        f"\nstatus --json {ours_s * 1000:.0f} ms, ray status {theirs_s * 1000:.0f} ms "
        f"(median of {RUNS}, alternated); ratio ours/ray = {ours_s / theirs_s:.2f}"
    )


STEPS = ("decode", "parse", "allocate", "json", "gc after", "render")
#: what a `status --json` costs beyond fetching: the columns the total adds up
COUNTED = ("parse", "allocate", "json", "gc after")


@pytest.mark.parametrize("actors_per_node", [20])
def test_parse_allocate_render_scaling(actors_per_node: int) -> None:
    """Each step of a refresh, then `status --json`'s text (its dict and `json_text`). The pure
    steps pause the cyclic GC (`cluster.gcpause`); "gc after" is the young-generation collection
    that then scans what they built, counted in the total so the pause hides nothing. A run's
    objects are freed before the next run begins: a `status --json` frees none while it works
    (until 2026-12-05 the next run's parse and allocate freed them, ~20 ms at 1,000 nodes)."""
    rows = []
    for nodes in (10, 100, 1000):
        bodies = {  # what the dashboard sends
            name: json.dumps(payload).encode()
            for name, payload in generate_payloads(nodes, actors_per_node).items()
        }
        timings: dict[str, list[float]] = {step: [] for step in (*STEPS, "total", "json.loads")}
        for _ in range(RUNS):
            begun = time.perf_counter()
            {name: json.loads(body) for name, body in bodies.items()}
            timings["json.loads"].append(time.perf_counter() - begun)
            start = time.perf_counter()
            payloads = {  # as `fetch_all` hands them over
                name: body if name in UNDECODED else decoded(body) for name, body in bodies.items()
            }
            decoding = time.perf_counter()
            state = parse(payloads, fetched_at=0.0)
            parsed = time.perf_counter()
            view = build_view(state, GENERATED_POOLS, now=0.0, stale_after=6.0)
            allocated = time.perf_counter()
            json_text(view_summary(view, "http://x"))
            dumped = time.perf_counter()
            gc.collect(0)
            collected = time.perf_counter()
            Console(file=io.StringIO(), width=160).print(render_view(view, "http://x"))
            rendered = time.perf_counter()
            del payloads, state, view  # freed here: not by the next run's timed steps
            marks = (start, decoding, parsed, allocated, dumped, collected, rendered)
            for step, begin, end in zip(STEPS, marks, marks[1:], strict=False):
                timings[step].append(end - begin)
            timings["total"].append(collected - decoding)
        medians = {step: statistics.median(values) * 1000 for step, values in timings.items()}
        rows.append((nodes, medians))
    columns = (*STEPS, "total", "json.loads")
    print(f"\n{'nodes':>6} " + " ".join(f"{c:>9}" for c in columns) + "  (ms, median)")
    for nodes, medians in rows:
        print(f"{nodes:>6} " + " ".join(f"{medians[c]:9.1f}" for c in columns))
    print(f"total: {' + '.join(COUNTED)}; decode: the client's decoding of the bodies (parse")
    print("reads the UNDECODED ones itself); json.loads: all of them decoded as before 2026-12-05")
    base_nodes, base = rows[0]
    for nodes, medians in rows[1:]:
        growth = medians["total"] / base["total"]
        print(f"{nodes}/{base_nodes} nodes: total x{growth:.1f} for x{nodes // base_nodes} nodes")
    (_, hundred), (_, thousand) = rows[1:]
    print(f"1000/100 nodes: total x{thousand['total'] / hundred['total']:.1f} (linear: x10)")
