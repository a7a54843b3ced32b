"""Reading a submitted file, as hostile input: it may have been swapped since it was submitted.

A batch records real paths inside the volume; by the time a file is read, someone may have put a
symbolic link, a FIFO or a device in its place, or made it huge. Each read therefore checks the
path is still the real path inside the volume, opens it without following a link and without
blocking, refuses anything but a regular file, and reads at most `max_bytes` before a deadline.
Every refusal is a DocumentError: the file's own fault, FAILED with the reason, never retried.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from openrag_tui.indexing.errors import DocumentError

MIB = 1 << 20
DEFAULT_MAX_FILE_MB = 200
BLOCK_BYTES = 1 << 20
#: a read slower than this (a hung network mount) fails the file instead of holding a slot
READ_DEADLINE_SECONDS = 300.0


def too_large(size: int, max_bytes: int) -> str:
    """`too large (1,024 MB > 200 MB)`."""
    return f"too large ({size / MIB:,.0f} MB > {max_bytes / MIB:,.0f} MB)"


def check_inside(path: str, volume: Path) -> None:
    """The path is still its own real path, inside the volume (no link swapped in above it)."""
    real = os.path.realpath(path)
    if real != os.path.abspath(path) or not Path(real).is_relative_to(volume):
        raise DocumentError(
            f"it no longer resolves inside DATA_VOLUME ({volume}): a link was put in its "
            "path after it was submitted; refused"
        )


def blocks(path: str, max_bytes: int) -> Iterator[bytes]:
    """The file's bytes, block by block, within the bounds (see the module)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise DocumentError(
                "it was replaced by a symbolic link after it was submitted: refused"
            ) from None
        raise DocumentError(f"unreadable: {error.strerror or error}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DocumentError("not a regular file (a pipe or a device?): refused")
        if info.st_size > max_bytes:
            raise DocumentError(too_large(info.st_size, max_bytes))
        deadline = time.monotonic() + READ_DEADLINE_SECONDS
        read = 0
        while block := os.read(fd, BLOCK_BYTES):
            read += len(block)
            if read > max_bytes:  # it grew while read
                raise DocumentError(too_large(read, max_bytes))
            if time.monotonic() > deadline:
                raise DocumentError(f"reading it took over {READ_DEADLINE_SECONDS:.0f} s")
            yield block
    except OSError as error:
        raise DocumentError(f"unreadable: {error.strerror or error}") from None
    finally:
        os.close(fd)


def read_source(path: str, max_bytes: int = DEFAULT_MAX_FILE_MB * MIB) -> bytes:
    """The whole file, bounded."""
    return b"".join(blocks(path, max_bytes))


def source_digest(path: str, volume: Path, max_bytes: int) -> str:
    """SHA-256 of the file's bytes (the same content is the same document), after checking the
    file is still where it was submitted."""
    check_inside(path, volume)
    digest = hashlib.sha256()
    for block in blocks(path, max_bytes):
        digest.update(block)
    return digest.hexdigest()
