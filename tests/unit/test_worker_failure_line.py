"""A failed pool task says which file in its worker's log (what `logs` and the panel search)."""

from __future__ import annotations

from openrag_tui.config import Settings
from openrag_tui.indexing.batch import config_of
from openrag_tui.indexing.errors import DocumentError
from openrag_tui.indexing.work import Job, convert, index_document
from openrag_tui.pools.workers import failure_line


def job(source: str) -> Job:
    """A job as the coordinator sends it to the indexer pool."""
    return Job(source, "b.txt", "p", "digest", {}, False, config_of(Settings()), "/o", "/data")


def test_the_line_names_the_task_the_file_and_the_first_line_of_the_reason() -> None:
    error = DocumentError("encrypted PDF: it needs a password\ntraceback follows")
    assert failure_line(convert, ("/data/a.pdf", "pdfium", 10), error) == (
        "openrag-tui: convert failed for /data/a.pdf: DocumentError: encrypted PDF: it needs a "
        "password"
    )
    assert failure_line(index_document, (job("/data/b.txt"),), ValueError()) == (
        "openrag-tui: index_document failed for /data/b.txt: ValueError"
    )
