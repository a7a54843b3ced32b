"""The indexing steps that run inside the pools, registered as pool task kinds.

A document is done where one worker can do it all: `index.documents` reads, converts, chunks,
embeds and writes documents in the indexer pool, one after the other, several small ones in one
task (a task's fixed cost, a call each way, is shared; each file's failure is its own, returned
in its place). A PDF for marker is converted in the marker pool first (`index.convert`, one
subprocess per PDF), and its Document goes by reference (never through the coordinator) to
`index.finish` in the indexer pool. Steps are plain functions of plain data, so a step whose
actor died can simply run again: the sink replaces the document as a whole.
"""

from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openrag_tui.indexing.batch import BatchConfig
from openrag_tui.indexing.chunking import chunk_pages
from openrag_tui.indexing.embedders import EmbedderConfig, make_embedder
from openrag_tui.indexing.errors import DocumentError, TaskFailed, Unavailable, plain_reason
from openrag_tui.indexing.loaders import Document, load
from openrag_tui.indexing.milvus import store
from openrag_tui.indexing.sinks import Indexed, Sink, make_sink
from openrag_tui.pools.tasks import task
from openrag_tui.pools.workers import failure_line


@dataclass(frozen=True)
class Job:
    """One file of one batch: what it is, where it goes, how."""

    source: str  # its real path
    relative: str  # its path inside DATA_VOLUME (the document's id in the partition)
    partition: str
    digest: str
    metadata: dict[str, Any]
    force: bool
    config: BatchConfig
    outputs: str  # DATA_VOLUME/.openrag-tui/partitions, for the files sink
    volume: str
    first_write: bool = False  # see Indexed.first_write


@dataclass(frozen=True)
class Outcome:
    pages: int
    chunks: int
    output: str
    seconds: float = 0.0  # the worker's CPU for the file (the coordinator sizes groups by it)


def embedder_of(config: BatchConfig) -> EmbedderConfig:
    return EmbedderConfig(
        kind=config.embedder,
        model=config.embedder_model,
        base_url=config.embedder_url,
        env_file=config.env_file,
    )


@functools.lru_cache(maxsize=16)
def _sink(name: str, outputs: str, volume: str, vdb_uri: str, collection: str) -> Sink:
    """The process's sink for these settings, made once (a files sink resolves its volume)."""
    return make_sink(name, Path(outputs), Path(volume), vdb_uri, collection)


@task("index.convert")
def convert(path: str, pdf_loader: str, max_bytes: int) -> Document:
    return load(path, pdf_loader, max_bytes)


def index_document(job: Job) -> Outcome:
    """The whole document in one worker: read, convert, chunk, embed, write. Its `seconds`
    are the CPU its thread spent (waiting for the disk or for the other threads is not the
    file's work: under load it made tiny files look slow, and their groups small)."""
    started = time.thread_time()
    document = load(job.source, job.config.pdf_loader, job.config.max_file_bytes)
    outcome = finish(job, document)
    return Outcome(outcome.pages, outcome.chunks, outcome.output, time.thread_time() - started)


@task("index.documents")
def index_documents(jobs: list[Job]) -> list[Outcome | Exception]:
    """Each document in turn; a failed one is its error in its place (DocumentError,
    Unavailable, or TaskFailed with the reason), said in the worker's log as a failed task
    would say it."""
    results: list[Outcome | Exception] = []
    for job in jobs:
        try:
            results.append(index_document(job))
        except Exception as error:
            print(failure_line(index_document, (job,), error), file=sys.stderr, flush=True)
            kind = (
                DocumentError if isinstance(error, DocumentError)
                else Unavailable if isinstance(error, Unavailable)
                else TaskFailed
            )  # fmt: skip
            results.append(kind(plain_reason(error)))
    return results


@task("index.finish")
def finish(job: Job, document: Any) -> Outcome:
    """Chunk, embed and write a converted document (given as a value, or by reference)."""
    if not isinstance(document, Document):
        import ray

        document = ray.get(document)
    config = job.config
    chunks = tuple(chunk_pages(document.pages, config.chunk_size, config.chunk_overlap))
    vectors: tuple[tuple[float, ...], ...] = ()
    if config.needs_vectors and chunks:
        embedder = make_embedder(embedder_of(config))
        vectors = tuple(map(tuple, embedder.embed([chunk.text for chunk in chunks])))
        store(config.vdb_uri, config.collection).ensure(
            embedder.config.identity, embedder.dimension
        )
    indexed = Indexed(
        job.source, job.relative, job.partition, job.digest, document.markdown, chunks,
        job.metadata, vectors, job.first_write,
    )  # fmt: skip
    sink = _sink(config.sink, job.outputs, job.volume, config.vdb_uri, config.collection)
    output, _written = sink.write(indexed, job.force)
    return Outcome(document.page_count, len(chunks), output)
