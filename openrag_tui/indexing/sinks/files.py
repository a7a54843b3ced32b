"""The `files` sink: per document `<relative path>.md` and `<relative path>.chunks.jsonl` under
`<outputs>/<partition>/`, each written to a temporary file, fsynced and renamed into place, so a
reader never sees half a document. The JSONL is written last: it is the mark of a finished
document, and its content hash makes a repeated write of the same content a no-op. A writer
killed mid-write (its node or cluster stopped) leaves a hidden temporary file; the next write of
the same document removes those older than STALE_TEMP_SECONDS (no live write takes that long).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

from openrag_tui.indexing.sinks import Indexed

MARKDOWN_SUFFIX = ".md"
CHUNKS_SUFFIX = ".chunks.jsonl"
STALE_TEMP_SECONDS = 3600.0


class FilesSink:
    def __init__(self, outputs: Path) -> None:
        self.outputs = outputs

    def paths(self, document: Indexed) -> tuple[Path, Path]:
        base = self.outputs / document.partition / document.relative
        return base.with_name(base.name + MARKDOWN_SUFFIX), base.with_name(
            base.name + CHUNKS_SUFFIX
        )

    def write(self, document: Indexed, force: bool) -> tuple[str, bool]:
        markdown, chunks = self.paths(document)
        if not force and _stored_hash(chunks) == document.content_hash:
            return str(chunks), False
        markdown.parent.mkdir(parents=True, exist_ok=True)
        for path in (markdown, chunks):
            _remove_stale_temps(path)
        _atomic_write(markdown, document.markdown)
        _atomic_write(chunks, "".join(json.dumps(r) + "\n" for r in _records(document)))
        return str(chunks), True


def _records(document: Indexed) -> list[dict[str, object]]:
    return [
        {
            "text": chunk.text,
            "source": document.source,
            "partition": document.partition,
            "pages": list(chunk.pages),
            "chunk_index": chunk.index,
            "content_hash": document.content_hash,
            "metadata": document.metadata,
        }
        for chunk in document.chunks
    ]


def _stored_hash(chunks: Path) -> str | None:
    try:
        with chunks.open(encoding="utf-8") as handle:
            return json.loads(handle.readline()).get("content_hash")
    except (OSError, ValueError):
        return None


def _remove_stale_temps(path: Path) -> None:
    cutoff = time.time() - STALE_TEMP_SECONDS
    for temporary in path.parent.glob(f".{path.name}.*"):
        with contextlib.suppress(OSError):  # another writer removed it first
            if temporary.stat().st_mtime < cutoff:
                temporary.unlink()


def _atomic_write(path: Path, text: str) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
