"""The indexing steps that run inside the pools, registered as pool task kinds.

The coordinator sends each step where it belongs: `index.convert` of a PDF to the marker pool
(one subprocess per PDF), of anything else and `index.chunk` and `index.write` to the indexer
pool. Steps are plain functions of plain data, so a step whose actor died can simply run again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openrag_tui.indexing.chunking import Chunk, chunk_pages
from openrag_tui.indexing.loaders import Document, load
from openrag_tui.indexing.sinks import Indexed, make_sink
from openrag_tui.pools.tasks import task


@task("index.convert")
def convert(path: str, pdf_loader: str, max_bytes: int) -> Document:
    return load(path, pdf_loader, max_bytes)


@task("index.chunk")
def chunk(document: Document, size: int, overlap: int) -> list[Chunk]:
    return chunk_pages(document.pages, size, overlap)


@task("index.write")
def write(
    outputs: str,
    source: str,
    relative: str,
    partition: str,
    digest: str,
    document: Document,
    chunks: list[Chunk],
    metadata: dict[str, Any],
    force: bool,
) -> tuple[str, bool]:
    indexed = Indexed(
        source, relative, partition, digest, document.markdown, tuple(chunks), metadata
    )
    volume = Path(outputs).parent.parent  # outputs is DATA_VOLUME/.openrag-tui/partitions
    return make_sink("files", Path(outputs), volume).write(indexed, force)
