"""Markdown: already what the sink stores; the text is the Markdown itself, one page."""

from __future__ import annotations

from openrag_tui.indexing.loaders.base import Document, read_text, single_page


def load(path: str) -> Document:
    return single_page("markdown", read_text(path))
