"""Indexing benchmark: pages/s of the pdfium engine through the pools against a plain
single-process pypdfium2 loop over the same files (same run), and files/s on many tiny files
against a plain single-process loop doing each file's work (hash, read, chunk, write, fsync).
A batch's time runs from planning it to its last file's end in the ledger; the CPU per file
counts every process of the cluster and this one.

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

import psutil
import pypdfium2 as pdfium
import pytest
import ray

from openrag_tui.config import EnvFile, Settings
from openrag_tui.indexing import api, work
from openrag_tui.indexing.batch import BatchProgress, config_of
from openrag_tui.indexing.paths import Where
from openrag_tui.indexing.sources import source_digest
from openrag_tui.pools import control
from tests.support.documents import pdf_bytes
from tests.support.raycluster import TestCluster, wait_until

pytestmark = pytest.mark.bench

PDFS, PAGES = 40, 25
TINY_FILES = int(os.environ.get("ORTUI_BENCH_TINY", "2000"))


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


def cpu_seconds() -> float:
    """CPU time of this process and all its children (the cluster's every process)."""
    total = 0.0
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def run_batch(
    settings: Settings, where: Where, folder: Path, partition: str
) -> tuple[float, float]:
    """Seconds from planning the batch until its last file ended (the ledger's time), and the
    median file's own seconds (from its claim to its final state)."""
    started = time.time()
    request = api.plan_batch(settings, where, [str(folder)], partition)
    batch_id = api.submit(settings, where, request)
    progress: BatchProgress = wait_until(
        lambda: (p := api.get_batch(where, batch_id)).finished and p, 600, "the batch", every=0.1
    )
    assert progress.counts == {"COMPLETED": progress.total}, progress.counts
    files = api.batch_files(where, batch_id)
    elapsed = max(task.finished_at or 0.0 for task in files) - started
    return elapsed, statistics.median(task.seconds or 0.0 for task in files)


def plain_loop(paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        pdf = pdfium.PdfDocument(str(path))
        for page in pdf:
            page.get_textpage().get_text_range()
    return time.perf_counter() - started


def plain_files_loop(settings: Settings, where: Where, paths: list[Path]) -> float:
    """Each file's work in one process, one after the other: what a pool task does."""
    config = config_of(settings)
    outputs = where.volume / ".plain"
    started = time.perf_counter()
    for path in paths:
        digest = source_digest(str(path), where.volume, config.max_file_bytes)
        relative = path.relative_to(where.volume).as_posix()
        job = work.Job(
            str(path), relative, "plain", digest, {}, False, config, str(outputs),
            str(where.volume),
        )  # fmt: skip
        work.index_document(job)
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

    tiny, plain_tiny = where.volume / "tiny", where.volume / "plain-tiny"
    for folder in (tiny, plain_tiny):
        folder.mkdir()
        for n in range(TINY_FILES):
            (folder / f"t{n}.txt").write_text(f"tiny file number {n} of {folder.name}\n")
    plain = plain_files_loop(settings, where, sorted(plain_tiny.iterdir()))
    cpu = cpu_seconds()
    seconds, tiny_latency = run_batch(settings, where, tiny, "tiny")
    cpu = cpu_seconds() - cpu
    print(
        f"  {TINY_FILES} tiny text files: plain loop {TINY_FILES / plain:.0f} files/s; "
        f"through the pools {TINY_FILES / seconds:.0f} files/s ({seconds:.1f} s), "
        f"ratio {plain / seconds:.2f}; median file {tiny_latency * 1000:.0f} ms; "
        f"CPU per file {cpu / TINY_FILES * 1000:.1f} ms"
    )
