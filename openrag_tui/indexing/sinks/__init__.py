"""Where indexed documents go. A sink takes one converted, chunked (and, for the vector index,
embedded) document and stores it as a whole, replacing what it held of that document.

`milvus` (the default) is the vector index people search; `files` keeps Markdown and JSONL on
the data volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from openrag_tui.indexing.chunking import Chunk

SINKS = ("milvus", "files")


@dataclass(frozen=True)
class Indexed:
    """Everything a sink stores about one document."""

    source: str  # the real path of the source
    relative: str  # its path inside DATA_VOLUME: the document's identity in the partition
    partition: str
    content_hash: str
    markdown: str
    chunks: tuple[Chunk, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    vectors: tuple[tuple[float, ...], ...] = ()  # one per chunk, for the vector index
    #: nothing of this document was ever written to the partition (the ledger's word): no
    #: older version's rows to remove
    first_write: bool = False


class Sink(Protocol):
    def write(self, document: Indexed, force: bool) -> tuple[str, bool]:
        """Store the document; returns where, and False when that exact content was already
        stored there (nothing rewritten) unless `force`."""
        ...

    def forget(self, partition: str, relatives: list[str]) -> int:
        """Remove these documents of the partition; how many pieces went."""
        ...


def make_sink(
    name: str,
    outputs: Path | None = None,
    volume: Path | None = None,
    vdb_uri: str = "",
    collection: str = "",
) -> Sink:
    if name == "files":
        from openrag_tui.indexing.sinks.files import FilesSink

        assert outputs is not None
        return FilesSink(outputs, volume)
    if name == "milvus":
        from openrag_tui.indexing.sinks.milvus import MilvusSink

        return MilvusSink(vdb_uri, collection)
    raise ValueError(f"unknown sink {name!r} (known: {', '.join(SINKS)})")
