"""Plain text: the file as it is, one page."""

from __future__ import annotations

from openrag_tui.indexing.loaders.base import Document, read_text, single_page


def load(path: str) -> Document:
    return single_page("text", read_text(path))
