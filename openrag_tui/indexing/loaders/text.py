"""Plain text: the file as it is, one page."""

from __future__ import annotations

from openrag_tui.indexing.loaders.base import Document, decode_text, single_page


def load(data: bytes) -> Document:
    return single_page("text", decode_text(data))
