"""Where indexed documents go. A sink takes one converted, chunked document and stores it once.

`files` (the default) keeps them on the data volume; another sink (a vector database) implements
the same `Sink` protocol and registers in `SINKS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from openrag_tui.indexing.chunking import Chunk


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


class Sink(Protocol):
    def write(self, document: Indexed, force: bool) -> tuple[str, bool]:
        """Store the document; returns where, and False when that exact content was already
        stored there (nothing rewritten) unless `force`."""
        ...


def make_sink(name: str, outputs: Path, volume: Path | None = None) -> Sink:
    if name != "files":
        raise ValueError(f"unknown sink {name!r} (known: files)")
    from openrag_tui.indexing.sinks.files import FilesSink

    return FilesSink(outputs, volume)
