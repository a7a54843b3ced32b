"""PDFs through pypdfium2 (the default engine): the text layer page by page, no models.

Fast and small (5 ms for 5 pages), but blind to scans: a PDF with no text layer at all fails
with a reason that says so instead of producing empty chunks.

PDFium is not thread-safe, not even across documents: two threads in it at once crash or corrupt
the process (an indexer actor runs its tasks on threads; seen as segfaults with 5 of them). One
lock per process lets a single document through at a time; processes (the pools' actors) are
where PDFs go in parallel.
"""

from __future__ import annotations

import threading

import pypdfium2 as pdfium

from openrag_tui.indexing.loaders.base import Document, DocumentError

#: held while this process is inside PDFium
PDFIUM_LOCK = threading.Lock()


def load(data: bytes) -> Document:
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            raise DocumentError(_reason(error)) from None
        try:
            pages = tuple(_page_text(pdf, number) for number in range(len(pdf)))
        finally:
            pdf.close()
    return paged("pdf", pages)


def paged(kind: str, pages: tuple[str, ...]) -> Document:
    """A paged Document; its Markdown marks each page so readers can find it again."""
    if not pages:
        raise DocumentError("the PDF has no pages")
    if not any(page.strip() for page in pages):
        raise DocumentError(
            f"no text layer in {len(pages)} page(s): a scan needs OCR (PDF_LOADER=marker)"
        )
    markdown = "\n\n".join(
        f"<!-- page {number} -->\n\n{text.strip()}" for number, text in enumerate(pages, 1)
    )
    return Document(kind, pages, markdown)


def _page_text(pdf: pdfium.PdfDocument, number: int) -> str:
    page = pdf[number]
    try:
        textpage = page.get_textpage()
        try:
            return textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
        finally:
            textpage.close()
    finally:
        page.close()


def _reason(error: pdfium.PdfiumError) -> str:
    message = str(error)
    if "password" in message.lower():
        return "encrypted PDF: it needs a password"
    return f"not a readable PDF ({message})"
