"""Indexing benchmark: pages/s of the pdfium engine through the pools against a plain
single-process pypdfium2 loop over the same files (same run), and files/s on many tiny files.

Run on demand (the results go into docs/benchmarks.md by hand, with the machine's load):
    .venv/bin/python -m pytest tests/bench/test_indexing_bench.py -m bench -s
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import ray

from openrag_tui.config import EnvFile, Settings
from openrag_tui.indexing import api
from openrag_tui.indexing.batch import BatchProgress
from openrag_tui.indexing.paths import Where
from openrag_tui.pools import control
from tests.support.documents import pdf_bytes
from tests.support.raycluster import TestCluster, wait_until

pytestmark = pytest.mark.bench

PDFS, PAGES = 40, 25
TINY_FILES = int(os.environ.get("ORTUI_BENCH_TINY", "400"))


@pytest.fixture
def indexing(ray_cluster: TestCluster, tmp_path: Path) -> Iterator[tuple[Settings, Where]]:
    (tmp_path / "data").mkdir()
    env = tmp_path / ".env"
    env.write_text(
        "RAY_POOL_SIZE=2\nRAY_NUM_GPUS=0.1\nRAY_MAX_TASKS_PER_WORKER=5\n"
        "MARKER_POOL_SIZE=2\nMARKER_NUM_GPUS=0.1\nMARKER_MAX_PROCESSES=2\n"
        "MARKER_MAX_TASKS_PER_CHILD=1000\nDATA_VOLUME=./data\nOPENRAG_TUI_SINK=files\n"
        f"OPENRAG_TUI_NAMESPACE=ortui-bench-{uuid.uuid4().hex[:8]}\n"
        f"RAY_HEAD_ADDRESS={ray_cluster.gcs_address}\n"
    )
    settings = Settings.from_envfile(EnvFile.read(env))
    control.connect(settings)
    try:
        control.deploy(settings)
        for pool in ("indexer", "marker"):
            assert control.wait_for(pool, 2, timeout=120).outcome == "reached"
        yield settings, Where.of(settings, tmp_path)
    finally:
        api.stop_coordinator()
        control.teardown()
        ray.shutdown()


def run_batch(
    settings: Settings, where: Where, folder: Path, partition: str
) -> tuple[float, float]:
    """Seconds from submitting until every file is final, and the median file's own seconds
    (from its claim to its final state)."""
    started = time.perf_counter()
    request = api.plan_batch(settings, where, [str(folder)], partition)
    batch_id = api.submit(settings, where, request)
    progress: BatchProgress = wait_until(
        lambda: (p := api.get_batch(where, batch_id)).finished and p, 600, "the batch", every=0.1
    )
    elapsed = time.perf_counter() - started
    assert progress.counts == {"COMPLETED": progress.total}, progress.counts
    per_file = [task.seconds or 0.0 for task in api.batch_files(where, batch_id)]
    return elapsed, statistics.median(per_file)


def plain_loop(paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        pdf = pdfium.PdfDocument(str(path))
        for page in pdf:
            page.get_textpage().get_text_range()
    return time.perf_counter() - started


def test_pdfium_pages_per_second_and_tiny_files_per_second(
    indexing: tuple[Settings, Where],
) -> None:
    settings, where = indexing
    warm = where.volume / "warm"
    warm.mkdir()
    for n in range(8):  # starts the marker subprocesses and the coordinator
        (warm / f"w{n}.pdf").write_bytes(pdf_bytes(f"w{n}", 2))
    run_batch(settings, where, warm, "warm")

    pdfs = where.volume / "pdfs"
    pdfs.mkdir()
    paths = []
    for n in range(PDFS):
        path = pdfs / f"doc{n}.pdf"
        path.write_bytes(pdf_bytes(f"doc{n}", PAGES, filler=120))
        paths.append(path)
    pages = PDFS * PAGES
    plain = plain_loop(paths)
    pooled, pdf_latency = run_batch(settings, where, pdfs, "pdfs")
    print(f"\n{PDFS} PDFs x {PAGES} pages ({pages} pages), cpus={os.cpu_count()}")
    print(f"  plain pypdfium2 loop (text only):        {pages / plain:8.0f} pages/s")
    print(f"  through the pools (convert+chunk+write): {pages / pooled:8.0f} pages/s")
    print(f"  ratio pools/plain: {plain / pooled:.2f}; median file {pdf_latency * 1000:.0f} ms")

    tiny = where.volume / "tiny"
    tiny.mkdir()
    for n in range(TINY_FILES):
        (tiny / f"t{n}.txt").write_text(f"tiny file number {n}\n")
    seconds, tiny_latency = run_batch(settings, where, tiny, "tiny")
    print(
        f"  {TINY_FILES} tiny text files: {TINY_FILES / seconds:.1f} files/s ({seconds:.1f} s); "
        f"median file {tiny_latency * 1000:.0f} ms, {api.in_flight(settings)} files in flight"
    )
