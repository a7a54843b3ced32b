"""The vector index against a real Milvus Lite server and the real WordLlama model: the
collection and its embedder, documents replaced as a whole, hybrid search that finds the right
document by a rare word and by a paraphrase, and the CLI's search and status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openrag_tui.config import Settings
from openrag_tui.indexing.embedders import EmbedderConfig
from openrag_tui.indexing.errors import DocumentError, Unavailable
from openrag_tui.indexing.milvus import EmbedderMismatch, Store, row_id
from openrag_tui.indexing.search import search
from tests.support.cli import run_cli
from tests.support.corpus import (
    DOCUMENTS,
    PARAPHRASES,
    RARE,
    collection_name,
    index_corpus,
    indexed,
    write,
)
from tests.support.raycluster import free_port


def test_the_collection_records_its_embedder_and_refuses_another(milvus) -> None:
    collection = collection_name()
    write(milvus, collection, indexed("p", "a.txt", ["alpha"]))
    store = Store(milvus.uri, collection)
    described = store.describe()
    assert (described.embedder, described.dimension, described.chunks) == (
        "wordllama/l2_supercat-256", 256, 1,
    )  # fmt: skip
    with pytest.raises(EmbedderMismatch, match="one model per collection"):
        store.ensure("openai/some-model", 1024)


def test_a_document_is_replaced_as_a_whole_with_no_stale_row(milvus) -> None:
    collection = collection_name()
    store = Store(milvus.uri, collection)
    write(milvus, collection, indexed("p", "doc.txt", ["one", "two", "three"], "v1"))
    write(milvus, collection, indexed("p", "doc.txt", ["one", "two", "three"], "v1"))  # again
    rows = store.rows_of("p", "doc.txt")
    assert sorted(r["chunk_index"] for r in rows) == [0, 1, 2]
    assert {r["id"] for r in rows} == {row_id("p", "doc.txt", i) for i in range(3)}
    write(milvus, collection, indexed("p", "doc.txt", ["changed"], "v2"))  # shorter now
    rows = store.rows_of("p", "doc.txt")
    assert [(r["chunk_index"], r["content_hash"]) for r in rows] == [(0, "v2")]
    write(milvus, collection, indexed("q", "doc.txt", ["elsewhere"], "v3"))  # other partition
    assert store.counts(["p", "q"]) == {"p": 1, "q": 1}
    assert store.forget("p", ["doc.txt"]) == 1
    assert store.counts(["p", "q"]) == {"p": 0, "q": 1}


def test_a_rare_word_finds_its_document_first(milvus, tmp_path: Path) -> None:
    collection = collection_name()
    index_corpus(milvus, collection, tmp_path / "corpus", "kb")
    settings = Settings.from_values(
        {"VDB_PORT": str(milvus.port), "OPENRAG_TUI_COLLECTION": collection}
    )
    for name, word in RARE.items():
        results = search(settings, "kb", word, top=3)
        assert results.hits[0].file_id == name, (word, [h.file_id for h in results.hits])


@pytest.mark.parametrize("name", sorted(PARAPHRASES))
def test_a_paraphrase_ranks_its_document_above_the_decoys(milvus, tmp_path, name) -> None:
    collection = collection_name()
    index_corpus(milvus, collection, tmp_path / "corpus", "kb")
    settings = Settings.from_values(
        {"VDB_PORT": str(milvus.port), "OPENRAG_TUI_COLLECTION": collection}
    )
    results = search(settings, "kb", PARAPHRASES[name], top=len(DOCUMENTS))
    assert results.hits[0].file_id == name, [h.file_id for h in results.hits]


def test_search_is_confined_to_its_partition(milvus, tmp_path: Path) -> None:
    collection = collection_name()
    index_corpus(milvus, collection, tmp_path / "corpus", "kb")
    write(milvus, collection, indexed("other", "marmosets.txt", ["marmoset marmoset"]))
    settings = Settings.from_values(
        {"VDB_PORT": str(milvus.port), "OPENRAG_TUI_COLLECTION": collection}
    )
    found = {hit.file_id for hit in search(settings, "kb", "marmoset", top=10).hits}
    assert "marmosets.txt" not in found and "animals.txt" in found


def test_the_cli_searches_and_prints_one_json_object(milvus, tmp_path: Path) -> None:
    collection = collection_name()
    index_corpus(milvus, collection, tmp_path / "data" / "corpus", "kb")
    env = tmp_path / ".env"
    env.write_text(f"{milvus.env}OPENRAG_TUI_COLLECTION={collection}\n")
    result = run_cli("search", "marmoset", "--partition", "kb", "--top", "2", "--json",
                     env_file=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert (found["query"], found["partition"]) == ("marmoset", "kb")
    first = found["results"][0]
    assert {"rank", "score", "source", "file_id", "pages", "text"} <= set(first)
    assert (first["rank"], first["file_id"], first["pages"]) == (1, "animals.txt", [1])
    assert "marmoset" in first["text"].lower() and len(found["results"]) == 2
    human = run_cli("search", "marmoset", "--partition", "kb", env_file=env)
    assert human.returncode == 0 and "animals.txt" in human.stdout


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("search", "  ", "--partition", "kb"), 2, "the query is empty"),
        (("search", "x", "--partition", "a/b"), 2, "partition 'a/b'"),
        (("search", "x", "--partition", "kb", "--top", "0"), 2, "--top must be from 1 to 100"),
    ],
)
def test_bad_search_input_is_one_line(milvus, tmp_path, args, code, words) -> None:
    env = tmp_path / ".env"
    env.write_text(milvus.env)
    result = run_cli(*args, env_file=env)
    assert result.returncode == code and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_search_with_no_store_says_which_setting(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"VDB_PORT={free_port()}\n")
    result = run_cli("search", "x", "--partition", "kb", env_file=env)
    assert result.returncode == 3 and "VDB_HOST, VDB_PORT" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_an_index_is_refused_before_anything_is_queued_when_the_store_is_down(
    tmp_path: Path,
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("hello\n")
    env = tmp_path / ".env"
    env.write_text(f"DATA_VOLUME=./data\nVDB_PORT={free_port()}\nRAY_HEAD_ADDRESS=127.0.0.1:1\n")
    result = run_cli("index", "data", "--partition", "p", env_file=env, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "taken from" not in line]
    assert "does not answer" in line and "VDB_HOST/VDB_PORT" in line
    assert not (tmp_path / "data" / ".openrag-tui" / "ledger.sqlite").exists()


def test_an_index_with_another_embedder_than_the_collections_is_refused(
    milvus, tmp_path: Path
) -> None:
    from tests.support.embedding_server import running_embedder

    collection = collection_name()
    write(milvus, collection, indexed("p", "a.txt", ["alpha"]))  # made with WordLlama
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "b.txt").write_text("beta\n")
    with running_embedder() as embedder:
        env = tmp_path / ".env"
        env.write_text(
            f"DATA_VOLUME=./data\n{milvus.env}OPENRAG_TUI_COLLECTION={collection}\n"
            f"EMBEDDER_BASE_URL={embedder.url}\nEMBEDDER_MODEL_NAME=m\n"
            "RAY_HEAD_ADDRESS=127.0.0.1:1\n"
        )
        result = run_cli("index", "data", "--partition", "p", env_file=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "holds vectors of wordllama/l2_supercat-256" in result.stderr
    assert "not of openai/m" in result.stderr


def test_status_shows_the_vector_store_reachable_or_not(milvus, tmp_path: Path) -> None:
    from openrag_tui.indexing.vectorstatus import vector_store_status

    up = vector_store_status(Settings.from_values({"VDB_PORT": str(milvus.port)}), None)
    assert up.reachable and up.error is None and up.collection == "openrag_tui"
    port = free_port()
    down = vector_store_status(Settings.from_values({"VDB_PORT": str(port)}), None)
    assert not down.reachable and down.uri.endswith(f"127.0.0.1:{port}")
    assert (down.error or "").startswith("nothing answers")


def test_the_embedder_stand_in_retries_429_and_500_and_fails_on_refusals(
    tmp_path: Path,
) -> None:
    from openrag_tui.indexing.embedders.openai import RETRIES, OpenAIEmbedder
    from tests.support.embedding_server import running_embedder

    with running_embedder() as server:
        config = EmbedderConfig("openai", "m", server.url, batch=3)
        embedder = OpenAIEmbedder(config, api_key=None)
        server.faults.too_many, server.faults.broken = 2, 1
        vectors = embedder.embed([f"text {n}" for n in range(7)])
        assert len(vectors) == 7 and embedder.dimension == 256
        assert server.faults.batches == [3, 3, 1]  # batched, after 3 retried answers
        server.faults.broken = RETRIES + 1
        with pytest.raises(Unavailable, match="did not answer after"):
            embedder.embed(["x"])
        server.faults.token = "right"
        with pytest.raises(DocumentError, match=r"HTTP 401\): invalid API key"):
            OpenAIEmbedder(config, api_key="wrong").embed(["x"])
        assert len(OpenAIEmbedder(config, api_key="right").embed(["x"])) == 1


def test_a_second_client_after_an_idle_half_minute_still_connects(milvus) -> None:
    """pymilvus pings idle connections every 10 s and re-checks a shared one idle for 30 s;
    Milvus Lite answers such pings with GOAWAY, which broke every later connection."""
    import time

    first = Store(milvus.uri, collection_name())
    first.ensure("wordllama/l2_supercat-256", 256)
    assert first.describe().exists
    idle_until = time.monotonic() + 32  # the behaviour under test is the idle time itself
    while time.monotonic() < idle_until:
        time.sleep(1)
    assert Store(milvus.uri, collection_name()).describe().exists is False
    assert first.describe().exists


def test_the_embedded_server_seals_rows_into_indexed_segments_without_a_flush(milvus) -> None:
    """Milvus Lite searches its memtable row by row: ours seals every few MiB (not 128), so a
    growing collection is mostly indexed segments with no flush from us."""
    collection = collection_name()
    store = Store(milvus.uri, collection)
    store.ensure("wordllama/l2_supercat-256", 256)
    text = "sealed rows " * 150  # ~1.8 KB, with the 1 KB vector: ~8 MB in all
    for start in range(0, 3000, 500):
        store.client().insert(collection, [
            {"id": f"r{n}", "text": text, "vector": [0.01 * (n % 7 + 1)] * 256,
             "partition": "p", "file_id": f"f{n}", "source": f"/f{n}", "pages": [1],
             "chunk_index": 0, "content_hash": "x", "metadata": {}}
            for n in range(start, start + 500)
        ])  # fmt: skip
    sealed = milvus.data_dir / "collections" / collection / "partitions"
    assert list(sealed.glob("*/data/data_*.parquet")), "every row is still in the memtable"


def test_bm25_skips_english_stop_words_in_text_and_query(milvus) -> None:
    """Stop words are in nearly every chunk: Milvus Lite would walk all their postings for a
    ranking they do not change. Only the other words of a query are matched."""
    collection = collection_name()
    write(milvus, collection, indexed("p", "a.txt", ["the turbine of the harbour"]))
    store = Store(milvus.uri, collection)
    client = store.client()

    def bm25(query: str) -> list:
        (found,) = client.search(
            collection, [query], anns_field="sparse", limit=5,
            search_params={"metric_type": "BM25"}, filter='partition == "p"',
        )  # fmt: skip
        return list(found)

    assert bm25("the of") == []
    assert len(bm25("the turbine")) == 1


def test_a_write_running_when_the_server_is_stopped_ends_and_is_kept(tmp_path: Path) -> None:
    """`milvus-lite server` closed its database under a running upsert: the write was lost (or
    failed) though the stop was a clean SIGINT. Ours lets it end, acknowledged, and keeps it."""
    import threading

    import psutil

    from openrag_tui.cluster import vectordb
    from tests.support.raycluster import wait_until

    server = vectordb.Embedded("127.0.0.1", free_port(), tmp_path / "data", tmp_path / "s.json",
                               tmp_path / "s.log")  # fmt: skip
    vectordb.start(server, lambda _line: None)
    try:
        uri = f"http://{server.address}"
        store = Store(uri, "in_flight")
        store.ensure("wordllama/l2_supercat-256", 256)
        # one request, about a second of the server's work
        rows = [{"id": f"r{n}", "text": f"row {n} " * 40, "vector": [0.01 * (n % 7 + 1)] * 256,
                 "partition": "p", "file_id": "big", "source": "/big", "pages": [1],
                 "chunk_index": n, "content_hash": "x", "metadata": {}}
                for n in range(5000)]  # fmt: skip
        process = vectordb.ours(server)
        assert process is not None
        busy = process.cpu_times().user
        outcome: list[object] = []
        client = store.client()
        writer = threading.Thread(
            target=lambda: outcome.append(client.upsert("in_flight", rows) and "ok")
        )
        writer.start()
        # the server is at work on the upsert: its own CPU time grows
        wait_until(lambda: process.cpu_times().user > busy + 0.1, 30, "the server to work",
                   every=0.02)  # fmt: skip
        vectordb.stop(server)
        writer.join(30)
        assert outcome == ["ok"], "the running write was cut off"
        assert not psutil.pid_exists(process.pid) or process.status() == psutil.STATUS_ZOMBIE
        vectordb.start(server, lambda _line: None)
        assert len(Store(uri, "in_flight").rows_of("p", "big")) == 5000
    finally:
        vectordb.stop(server)
