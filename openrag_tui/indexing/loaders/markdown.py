"""Markdown: already what the sink stores; the text is the Markdown itself, one page."""

from __future__ import annotations

from openrag_tui.indexing.loaders.base import Document, decode_text, single_page


def load(data: bytes) -> Document:
    return single_page("markdown", decode_text(data))
