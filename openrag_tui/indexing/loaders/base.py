"""What a loader returns, and the one error that means "this file itself is the problem"."""

from __future__ import annotations

from dataclasses import dataclass


class DocumentError(Exception):
    """The file cannot be indexed as it is (corrupt, encrypted, empty, unsupported): FAILED with
    this plain reason, never retried. Any other error is the machinery's, and is retried."""


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


def read_text(path: str) -> str:
    """UTF-8 (a BOM is dropped), else Latin-1, which decodes any bytes."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise DocumentError(f"unreadable: {error.strerror or error}") from None
