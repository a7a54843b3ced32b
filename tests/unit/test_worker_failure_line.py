"""A failed pool task says which file in its worker's log (what `logs` and the panel search)."""

from __future__ import annotations

from dataclasses import dataclass

from openrag_tui.indexing.errors import DocumentError
from openrag_tui.indexing.work import convert, index_document
from openrag_tui.pools.workers import failure_line


@dataclass
class _Job:
    path: str


def test_the_line_names_the_task_the_file_and_the_first_line_of_the_reason() -> None:
    error = DocumentError("encrypted PDF: it needs a password\ntraceback follows")
    assert failure_line(convert, ("/data/a.pdf", "pdfium", 10), error) == (
        "openrag-tui: convert failed for /data/a.pdf: DocumentError: encrypted PDF: it needs a "
        "password"
    )
    assert failure_line(index_document, (_Job("/data/b.txt"),), ValueError()) == (
        "openrag-tui: index_document failed for /data/b.txt: ValueError"
    )
