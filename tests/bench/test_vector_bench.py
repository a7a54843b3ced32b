"""Vector index benchmarks, on a real Milvus Lite server and the real WordLlama model.

1. Chunks embedded and inserted per second through the pools (text files → chunks → WordLlama →
   Milvus, the `milvus` sink) against a plain single-process loop over the same files: read,
   chunk, embed each document's chunks in one call, insert them with pymilvus.
2. Search latency p50/p95 at 10,000 and 100,000 chunks (a collection each, Zipf-distributed
   words with English's small ones between): in-process (`indexing.search.search`, embedding
   the query included) and through the CLI (`openrag-tui search`, a fresh process).

Run on demand (results go into docs/benchmarks.md by hand, with the machine's load):
    .venv/bin/python -m pytest tests/bench/test_vector_bench.py -m bench -s
"""

from __future__ import annotations

import itertools
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from openrag_tui.config import EnvFile, Settings
from openrag_tui.indexing import api
from openrag_tui.indexing.chunking import chunk_pages
from openrag_tui.indexing.embedders import EmbedderConfig, make_embedder
from openrag_tui.indexing.milvus import Store, row_id, store
from openrag_tui.indexing.paths import Where
from openrag_tui.indexing.search import search
from openrag_tui.pools import control
from tests.support.raycluster import TestCluster, wait_until

pytestmark = pytest.mark.bench

DOCUMENTS, CHUNKS_PER_DOCUMENT = int(os.environ.get("ORTUI_BENCH_DOCUMENTS", "200")), 10
CHUNK, OVERLAP = 1000, 200
SIZES = (10_000, 100_000)
QUERIES, CLI_QUERIES = 50, 7
#: a Zipf-distributed vocabulary with English's small words between, like prose: a query's rare
#: words have short posting lists and its common ones long (a uniform 50-word vocabulary, the
#: first version of this benchmark, put every query word in nearly every chunk)
VOCABULARY = [f"w{n}" for n in range(30_000)]
ZIPF = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(VOCABULARY))))
SMALL_WORDS = ("a", "an", "and", "are", "as", "at", "be", "by", "for", "in", "is", "it", "of", "on",
               "or", "that", "the", "this", "to", "was", "with")  # fmt: skip


def text_of(rng: random.Random, characters: int) -> str:
    words: list[str] = []
    length = 0
    while length < characters:
        word = rng.choices(VOCABULARY, cum_weights=ZIPF)[0]
        if rng.random() < 0.4:
            word = f"{word} {rng.choice(SMALL_WORDS)}"
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def query_of(rng: random.Random) -> str:
    """Three words of the 3,000 most common and two small ones: "w12 w840 the w77 of"."""
    return " ".join([*rng.choices(VOCABULARY[:3000], cum_weights=ZIPF[:3000], k=3), "the", "of"])


def env_text(milvus, collection: str, extra: str = "") -> str:
    return (
        f"DATA_VOLUME=./data\nOPENRAG_TUI_COLLECTION={collection}\n{milvus.env}"
        f"OPENRAG_TUI_CHUNK_SIZE={CHUNK}\nOPENRAG_TUI_CHUNK_OVERLAP={OVERLAP}\n{extra}"
    )


@pytest.fixture
def pools(ray_cluster: TestCluster, milvus, tmp_path: Path) -> Iterator[tuple[Settings, Where]]:
    (tmp_path / "data").mkdir()
    env = tmp_path / ".env"
    env.write_text(
        env_text(
            milvus,
            f"bench_pools_{uuid.uuid4().hex[:8]}",
            "RAY_POOL_SIZE=2\nRAY_NUM_GPUS=0.1\nRAY_MAX_TASKS_PER_WORKER=5\n"
            "MARKER_POOL_SIZE=1\nMARKER_NUM_GPUS=0.1\n"
            f"OPENRAG_TUI_NAMESPACE=ortui-vbench-{uuid.uuid4().hex[:8]}\n"
            f"RAY_HEAD_ADDRESS={ray_cluster.gcs_address}\n",
        )
    )
    settings = Settings.from_envfile(EnvFile.read(env))
    control.connect(settings)
    try:
        control.deploy(settings)
        assert control.wait_for("indexer", 2, timeout=120).outcome == "reached"
        yield settings, Where.of(settings, tmp_path)
    finally:
        api.stop_coordinator()
        control.teardown()
        ray.shutdown()


def write_documents(folder: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    paths = []
    for n in range(count):
        path = folder / f"doc{n}.txt"
        path.write_text(text_of(rng, CHUNKS_PER_DOCUMENT * (CHUNK - OVERLAP)))
        paths.append(path)
    return paths


def run_batch(settings: Settings, where: Where, folder: Path, partition: str) -> float:
    started = time.perf_counter()
    request = api.plan_batch(settings, where, [str(folder)], partition)
    batch_id = api.submit(settings, where, request)
    progress = wait_until(
        lambda: (p := api.get_batch(where, batch_id)).finished and p, 900, "the batch", every=0.1
    )
    assert progress.counts == {"COMPLETED": progress.total}, progress.counts
    return time.perf_counter() - started


def plain_loop(paths: list[Path], uri: str, collection: str) -> tuple[float, int]:
    """The baseline: one process, document by document, the same chunking and the same model."""
    embedder = make_embedder(EmbedderConfig("wordllama"))
    index = Store(uri, collection)
    index.ensure(embedder.config.identity, embedder.dimension)
    client = index.client()
    chunks = 0
    started = time.perf_counter()
    for path in paths:
        pieces = chunk_pages((path.read_text(),), CHUNK, OVERLAP)
        vectors = embedder.embed([piece.text for piece in pieces])
        rows = [
            {"id": row_id("plain", path.name, piece.index), "text": piece.text, "vector": vector,
             "partition": "plain", "file_id": path.name, "source": str(path),
             "pages": list(piece.pages), "chunk_index": piece.index, "content_hash": "x",
             "metadata": {}}
            for piece, vector in zip(pieces, vectors, strict=True)
        ]  # fmt: skip
        client.insert(collection, rows)
        chunks += len(rows)
    return time.perf_counter() - started, chunks


@pytest.mark.timeout(1800)
def test_chunks_per_second_through_the_pools_against_a_plain_loop(
    pools: tuple[Settings, Where], milvus
) -> None:
    settings, where = pools
    warm = write_documents(where.volume / "warm", 4, seed=0)
    run_batch(settings, where, warm[0].parent, "warm")  # loads the model in every actor
    plain_paths = write_documents(where.volume / "plain", DOCUMENTS, seed=1)
    pooled_folder = write_documents(where.volume / "pooled", DOCUMENTS, seed=2)[0].parent
    plain_seconds, chunks = plain_loop(
        plain_paths, milvus.uri, f"bench_plain_{uuid.uuid4().hex[:8]}"
    )
    pooled_seconds = run_batch(settings, where, pooled_folder, "pooled")
    pooled_chunks = store(settings.vdb_uri, settings.collection).counts(["pooled"])["pooled"]
    plain_rate, pooled_rate = chunks / plain_seconds, pooled_chunks / pooled_seconds
    print(f"\n{DOCUMENTS} text documents, {chunks} chunks of {CHUNK} chars, cpus={os.cpu_count()}")
    print(
        f"  plain loop (chunk, embed, insert): {plain_rate:6.0f} chunks/s ({plain_seconds:.1f} s)"
    )
    print(
        f"  through the pools (milvus sink):  {pooled_rate:6.0f} chunks/s ({pooled_seconds:.1f} s)"
    )
    print(f"  ratio pools/plain: {pooled_rate / plain_rate:.2f} (goal >= 0.7)")


@pytest.fixture(scope="module")
def loaded(milvus, tmp_path_factory) -> Iterator[dict[int, Path]]:
    """A collection per size, each one partition `docs` (sizes do not share a collection: the
    search of a partition filters every row of its collection). The .env of each, by size."""
    embedder = make_embedder(EmbedderConfig("wordllama"))
    rng = random.Random(7)
    envs = {}
    started = time.perf_counter()
    for size in SIZES:
        folder = tmp_path_factory.mktemp(f"search{size}")
        (folder / "data").mkdir()
        collection = f"bench_search_{size}_{uuid.uuid4().hex[:8]}"
        envs[size] = folder / ".env"
        envs[size].write_text(env_text(milvus, collection))
        index = Store(milvus.uri, collection)
        index.ensure(embedder.config.identity, embedder.dimension)
        client = index.client()
        for start in range(0, size, 2000):
            texts = [text_of(rng, CHUNK - OVERLAP) for _ in range(2000)]
            vectors = embedder.embed(texts)
            client.insert(collection, [
                {"id": row_id("docs", f"f{start + n}", 0), "text": text, "vector": vector,
                 "partition": "docs", "file_id": f"f{start + n}", "source": f"/f{start + n}",
                 "pages": [1], "chunk_index": 0, "content_hash": "x", "metadata": {}}
                for n, (text, vector) in enumerate(zip(texts, vectors, strict=True))
            ])  # fmt: skip
    print(f"\nloaded {sum(SIZES)} chunks in {time.perf_counter() - started:.0f} s")
    yield envs


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


@pytest.mark.timeout(1800)
def test_search_latency_at_ten_and_a_hundred_thousand_chunks(loaded: dict[int, Path]) -> None:
    rng = random.Random(11)
    queries = [query_of(rng) for _ in range(QUERIES)]
    for size in SIZES:
        env = loaded[size]
        settings = Settings.from_envfile(EnvFile.read(env))
        search(settings, "docs", queries[0])  # connects, loads the model and the collection
        timings = []
        for query in queries:
            started = time.perf_counter()
            results = search(settings, "docs", query, top=5)
            timings.append(time.perf_counter() - started)
            assert len(results.hits) == 5
        p50, p95 = percentiles(timings)
        cli = []
        for query in queries[:CLI_QUERIES]:
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "openrag_tui", "search", query, "--partition", "docs",
                 "--json", "--env", str(env)],
                capture_output=True, text=True, timeout=120, cwd=env.parent,
            )  # fmt: skip
            cli.append(time.perf_counter() - started)
            assert done.returncode == 0, done.stderr
        c50, c95 = percentiles(cli)
        print(
            f"  {size:>7,} chunks: in-process p50 {p50 * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms"
            f" | CLI p50 {c50 * 1000:6.0f} ms  p95 {c95 * 1000:6.0f} ms"
        )
