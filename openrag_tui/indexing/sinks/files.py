"""The `files` sink: per document `<relative path>.md` and `<relative path>.chunks.jsonl` under
`<outputs>/<partition>/`, each written to a temporary file, fsynced and renamed into place, so a
reader never sees half a document. The JSONL is written last: it is the mark of a finished
document, and its content hash makes a repeated write of the same content a no-op. A writer
killed mid-write (its node or cluster stopped) leaves a hidden temporary file; a write into the
folder removes those older than STALE_TEMP_SECONDS (no live write takes that long), looking at
most once per SWEEP_SECONDS per folder and process: the look lists the folder, and a write must
not cost as much as its folder is large (4,000 documents in one folder made each write list
8,000 names, most of a tiny file's time).

Every output resolves inside the data volume, links followed (a link planted in the outputs
tree is refused, never written through); a name too long for the file system keeps its start
and gets a short hash; files get the mode the umask gives any new file (as `touch` would).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import time
from pathlib import Path

from openrag_tui.indexing.errors import DocumentError
from openrag_tui.indexing.sinks import Indexed

MARKDOWN_SUFFIX = ".md"
CHUNKS_SUFFIX = ".chunks.jsonl"
STALE_TEMP_SECONDS = 3600.0
SWEEP_SECONDS = 600.0
_swept: dict[str, float] = {}  # folder → when this process last looked for stale temporaries
#: bytes in one file name (ext4, XFS, NFS); the temporary files add a prefix and a suffix
NAME_MAX = 255
_TEMP_ROOM = 16


def output_name(name: str, suffix: str) -> str:
    """`name + suffix`, or, when that is too long for a file name, the start of `name`, a `~`,
    10 hex digits of its hash and the suffix: readable, and unique for each source name."""
    limit = NAME_MAX - _TEMP_ROOM
    full = name + suffix
    if len(full.encode("utf-8")) <= limit:
        return full
    tag = "~" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    room = limit - len((tag + suffix).encode("utf-8"))
    start = name.encode("utf-8", "surrogateescape")[:room].decode("utf-8", "ignore")
    return start + tag + suffix


class FilesSink:
    def __init__(self, outputs: Path, volume: Path | None = None) -> None:
        self.outputs = outputs
        self.volume = Path(os.path.realpath(volume or outputs))

    def paths(self, document: Indexed) -> tuple[Path, Path]:
        base = self.outputs / document.partition / document.relative
        return (
            base.with_name(output_name(base.name, MARKDOWN_SUFFIX)),
            base.with_name(output_name(base.name, CHUNKS_SUFFIX)),
        )

    def write(self, document: Indexed, force: bool) -> tuple[str, bool]:
        markdown, chunks = self.paths(document)
        folder = markdown.parent
        self._check_inside(folder)
        if not force and _stored_hash(chunks) == document.content_hash:
            return str(chunks), False
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            self._check_inside(folder)  # created through a planted link?
        _remove_stale_temps(folder)
        _atomic_write(markdown, document.markdown)
        _atomic_write(chunks, "".join(json.dumps(r) + "\n" for r in _records(document)))
        return str(chunks), True

    def forget(self, partition: str, relatives: list[str]) -> int:
        """Remove these documents' Markdown and chunks; how many files went."""
        removed = 0
        for relative in relatives:
            for path in self.paths(Indexed("", relative, partition, "", "", ())):
                self._check_inside(path.parent)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    def _check_inside(self, folder: Path) -> None:
        real = Path(os.path.realpath(folder))
        if not real.is_relative_to(self.volume):
            raise DocumentError(
                f"its output folder {folder} resolves to {real}, outside DATA_VOLUME "
                f"({self.volume}): a link in the outputs tree? refused"
            )


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


def _remove_stale_temps(folder: Path) -> None:
    now = time.time()
    if now - _swept.get(str(folder), 0.0) < SWEEP_SECONDS:
        return
    _swept[str(folder)] = now
    cutoff = now - STALE_TEMP_SECONDS
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.startswith(".") or not _is_temporary(entry.name):
                continue
            with contextlib.suppress(OSError):  # another writer removed it first
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)


def _is_temporary(name: str) -> bool:
    """`.<name>.md.<random>` or `.<name>.chunks.jsonl.<random>`: what `_atomic_write` leaves."""
    return f"{MARKDOWN_SUFFIX}." in name or f"{CHUNKS_SUFFIX}." in name


def _temporary(path: Path) -> tuple[int, str]:
    """A new hidden file beside `path`, created with the mode the umask gives any new file (as
    `touch` would: the kernel applies it), never through a link, never an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        temporary = str(path.parent / f".{path.name}.{secrets.token_hex(4)}")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:  # another writer's name: draw again
            continue


def _atomic_write(path: Path, text: str) -> None:
    descriptor, temporary = _temporary(path)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
