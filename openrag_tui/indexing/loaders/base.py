"""What a loader returns, and the one error that means "this file itself is the problem"."""

from __future__ import annotations

from dataclasses import dataclass

from openrag_tui.indexing.errors import DocumentError

__all__ = ["Document", "DocumentError", "decode_text", "single_page"]


@dataclass(frozen=True)
class Document:
    """A converted document: its text page by page (one page for unpaged kinds) and Markdown."""

    kind: str
    pages: tuple[str, ...]
    markdown: str

    @property
    def page_count(self) -> int:
        return len(self.pages)


def single_page(kind: str, text: str, markdown: str | None = None) -> Document:
    if not text.strip():
        raise DocumentError(f"no text in this {kind} file")
    return Document(kind, (text,), text if markdown is None else markdown)


def decode_text(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), else Latin-1, which decodes any bytes."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")
