"""One loader per kind of document, chosen by the file's extension (PDFs also by PDF_LOADER).

The file is read once, safely and within bounds (`sources`); each loader turns its bytes into a
Document or raises DocumentError with a plain reason.
"""

from __future__ import annotations

import contextlib
import os

from openrag_tui.indexing.loaders import docx, html, markdown, pdfium, text
from openrag_tui.indexing.loaders.base import Document, DocumentError
from openrag_tui.indexing.sources import DEFAULT_MAX_FILE_MB, MIB, blocks, read_source

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


def load(
    path: str, pdf_loader: str = "pdfium", max_bytes: int = DEFAULT_MAX_FILE_MB * MIB
) -> Document:
    """Convert one file; DocumentError says why it cannot be."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix != ".pdf" and suffix not in _BY_SUFFIX:
        raise DocumentError(
            f"unsupported type {suffix or '(no extension)'!r} (supported: {', '.join(SUPPORTED)})"
        )
    if suffix == ".pdf" and pdf_loader not in PDF_LOADERS:
        raise DocumentError(f"unknown PDF_LOADER {pdf_loader!r} (choose {', '.join(PDF_LOADERS)})")
    if suffix == ".pdf" and pdf_loader != "pdfium":
        from openrag_tui.indexing.loaders import marker

        with contextlib.closing(blocks(path, max_bytes)) as reading:  # marker reads the path
            if next(reading, None) is None:  # itself: check it first
                raise DocumentError("empty file (0 bytes)")
        return marker.load(path, pdf_loader)
    data = read_source(path, max_bytes)
    if not data:
        raise DocumentError("empty file (0 bytes)")
    return _BY_SUFFIX[suffix](data) if suffix != ".pdf" else pdfium.load(data)
