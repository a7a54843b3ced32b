"""One loader per kind of document, chosen by the file's extension (PDFs also by PDF_LOADER).

Each turns a path into a Document or raises DocumentError with a plain reason.
"""

from __future__ import annotations

import os

from openrag_tui.indexing.loaders import docx, html, markdown, pdfium, text
from openrag_tui.indexing.loaders.base import Document, DocumentError

PDF_LOADERS = ("pdfium", "marker", "marker-text")
_BY_SUFFIX = {
    ".md": markdown.load,
    ".markdown": markdown.load,
    ".txt": text.load,
    ".text": text.load,
    ".html": html.load,
    ".htm": html.load,
    ".docx": docx.load,
}
SUPPORTED = (".pdf", *_BY_SUFFIX)

__all__ = ["PDF_LOADERS", "SUPPORTED", "Document", "DocumentError", "is_pdf", "load"]


def is_pdf(path: str) -> bool:
    return path.lower().endswith(".pdf")


def load(path: str, pdf_loader: str = "pdfium") -> Document:
    """Convert one file; DocumentError says why it cannot be."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix != ".pdf" and suffix not in _BY_SUFFIX:
        raise DocumentError(
            f"unsupported type {suffix or '(no extension)'!r} (supported: {', '.join(SUPPORTED)})"
        )
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise DocumentError(f"unreadable: {error.strerror or error}") from None
    if size == 0:
        raise DocumentError("empty file (0 bytes)")
    if suffix != ".pdf":
        return _BY_SUFFIX[suffix](path)
    if pdf_loader == "pdfium":
        return pdfium.load(path)
    if pdf_loader in PDF_LOADERS:
        from openrag_tui.indexing.loaders import marker

        return marker.load(path, pdf_loader)
    raise DocumentError(f"unknown PDF_LOADER {pdf_loader!r} (choose {', '.join(PDF_LOADERS)})")
