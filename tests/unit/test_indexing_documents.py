"""Loaders, chunking and the files sink on generated documents: no cluster."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from openrag_tui.indexing.chunking import check_sizes, chunk_pages
from openrag_tui.indexing.loaders import DocumentError, load
from openrag_tui.indexing.loaders import marker as marker_loader
from openrag_tui.indexing.loaders import pdfium as pdfium_loader
from openrag_tui.indexing.loaders.html import to_markdown
from openrag_tui.indexing.sinks import Indexed, make_sink
from openrag_tui.indexing.sinks.files import FilesSink
from tests.support.documents import pdf_bytes, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder, pdfs=1, pages=3)


def test_each_kind_loads_or_fails_with_its_reason(corpus: tuple[Path, dict]) -> None:
    folder, expected = corpus
    for relative, outcome in expected.items():
        if outcome.state == "COMPLETED":
            document = load(str(folder / relative))
            assert document.page_count == max(outcome.page_words)
            for page, word in outcome.page_words.items():
                assert word in document.pages[page - 1]
        else:
            with pytest.raises(DocumentError, match=outcome.reason):
                load(str(folder / relative))


def test_an_unknown_pdf_loader_is_a_document_error(corpus: tuple[Path, dict]) -> None:
    folder, _ = corpus
    with pytest.raises(DocumentError, match="unknown PDF_LOADER"):
        load(str(folder / "pdfs" / "report-0.pdf"), "docling")


def test_html_keeps_visible_text_and_headings_only() -> None:
    html = "<head><style>x{}</style></head><h2>Title</h2><p>One &amp; two</p><script>no</script>"
    assert to_markdown(html) == "## Title\n\nOne & two"


@pytest.mark.skipif(importlib.util.find_spec("marker") is not None, reason="marker installed")
@pytest.mark.parametrize("engine", ["marker", "marker-text"])
def test_marker_without_the_extra_fails_at_once_naming_it(engine: str) -> None:
    with pytest.raises(
        DocumentError, match=r"needs marker-pdf: pip install 'openrag-tui\[marker\]'"
    ):
        marker_loader.preflight(engine)


def test_marker_preflight_names_missing_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("marker")
    font = tmp_path / "font.ttf"
    font.write_bytes(b"font")
    monkeypatch.setenv("FONT_PATH", str(font))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DocumentError, match="surya_layout2"):
        marker_loader.preflight("marker")


# Chunking


def test_chunks_overlap_and_keep_their_pages() -> None:
    pages = ("alpha " * 40, "beta " * 40, "gamma " * 40)
    chunks = chunk_pages(pages, size=100, overlap=20)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(len(c.text) <= 100 for c in chunks)
    for chunk in chunks:
        words = set(chunk.text.split())
        expected = {n for n, w in enumerate(("alpha", "beta", "gamma"), 1) if w in words}
        assert set(chunk.pages) >= expected and chunk.pages
    for before, after in itertools.pairwise(chunks):
        assert after.text[:5] in before.text[-20:]  # the overlap
    text = " ".join(" ".join(c.text.split()) for c in chunks)
    assert text.count("alpha") >= 40 and text.count("gamma") >= 40  # nothing lost


def test_a_word_longer_than_a_chunk_is_cut_and_the_loop_ends() -> None:
    chunks = chunk_pages(("x" * 250,), size=100, overlap=99)
    assert "".join(c.text for c in chunks).count("x") >= 250


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_impossible_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        check_sizes(size, overlap)


# The files sink


def indexed(content_hash: str = "h1") -> Indexed:
    chunks = tuple(chunk_pages(("page one text", "page two text"), 100, 10))
    return Indexed("/v/a/b.pdf", "a/b.pdf", "docs", content_hash, "# md", chunks, {"k": "v"})


def test_the_sink_writes_markdown_and_chunks_per_partition(tmp_path: Path) -> None:
    sink = make_sink("files", tmp_path)
    output, written = sink.write(indexed(), force=False)
    assert written and output == str(tmp_path / "docs" / "a" / "b.pdf.chunks.jsonl")
    assert (tmp_path / "docs" / "a" / "b.pdf.md").read_text() == "# md"
    (record,) = [json.loads(line) for line in Path(output).read_text().splitlines()]
    assert record == {
        "text": "page one text\n\npage two text",
        "source": "/v/a/b.pdf",
        "partition": "docs",
        "pages": [1, 2],
        "chunk_index": 0,
        "content_hash": "h1",
        "metadata": {"k": "v"},
    }
    assert sorted(p.name for p in (tmp_path / "docs" / "a").iterdir()) == [
        "b.pdf.chunks.jsonl", "b.pdf.md",
    ]  # fmt: skip


def test_the_same_content_is_written_once_unless_forced(tmp_path: Path) -> None:
    sink = FilesSink(tmp_path)
    sink.write(indexed(), force=False)
    _markdown, chunks = sink.paths(indexed())
    stamp = chunks.stat().st_mtime_ns
    assert sink.write(indexed(), force=False)[1] is False
    assert chunks.stat().st_mtime_ns == stamp
    assert sink.write(indexed(), force=True)[1] is True
    assert sink.write(indexed("h2"), force=False)[1] is True  # changed content is rewritten


def test_an_unknown_sink_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown sink"):
        make_sink("nowhere", tmp_path)


def test_docx_without_the_extra_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch, corpus: tuple[Path, dict]
) -> None:
    from openrag_tui.indexing.loaders import docx

    folder, _ = corpus
    monkeypatch.setattr(docx.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DocumentError, match=r"pip install 'openrag-tui\[docx\]'"):
        load(str(folder / "notes" / "letter.docx"))


def test_temporary_files_of_killed_writers_are_removed_once_stale(tmp_path: Path) -> None:
    sink = FilesSink(tmp_path)
    markdown, chunks = sink.paths(indexed())
    markdown.parent.mkdir(parents=True)
    stale, fresh = (
        chunks.with_name(f".{chunks.name}.old"),
        markdown.with_name(f".{markdown.name}.new"),
    )
    for temporary in (stale, fresh):
        temporary.write_text("half")
    os.utime(stale, (0, 0))
    sink.write(indexed(), force=False)
    assert not stale.exists() and fresh.exists()  # a fresh one may be another live write


def test_pdfium_is_entered_by_one_thread_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """PDFium is not thread-safe, not even across documents (an indexer actor's five task
    threads in it at once segfaulted, or hung, in 4 runs of 5): a thread reading a PDF holds
    it open for a while here, and no other may come in meanwhile."""
    real = pdfium_loader.pdfium.PdfDocument
    watch = threading.Lock()
    inside, most, another = 0, 0, threading.Event()

    def watched(data: bytes) -> object:
        nonlocal inside, most
        with watch:
            inside += 1
            most = max(most, inside)
            if inside > 1:
                another.set()
        another.wait(0.2)  # long enough for another thread to come in, if it may
        with watch:
            inside -= 1
        return real(data)

    monkeypatch.setattr(pdfium_loader.pdfium, "PdfDocument", watched)
    data = pdf_bytes("threads", 2)
    with ThreadPoolExecutor(4) as threads:
        pages = list(threads.map(lambda _: pdfium_loader.load(data).page_count, range(4)))
    assert (pages, most) == ([2, 2, 2, 2], 1)
