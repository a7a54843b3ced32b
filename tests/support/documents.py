"""Generated documents for the indexing tests: each knows what its output must contain.

Multi-page PDFs (fpdf2) carry a unique word per page, so a test can check that page N's word
landed in a chunk that names page N; the broken ones fail for a known reason.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from fpdf import FPDF
from pypdf import PdfReader, PdfWriter


@dataclass(frozen=True)
class Expected:
    state: str  # the file's final state
    page_words: dict[int, str] = field(default_factory=dict)  # page -> a word only that page has
    reason: str = ""  # a fragment of the FAILED reason


def page_word(name: str, page: int) -> str:
    return f"{name.replace('-', '').replace('.', '')}zq{page}"


def pdf_bytes(name: str, pages: int, filler: int = 40) -> bytes:
    document = FPDF()
    document.set_font("helvetica", size=11)
    for number in range(1, pages + 1):
        document.add_page()
        words = " ".join(f"lorem{number}x{i}" for i in range(filler))
        document.multi_cell(0, 6, f"Page {number} {page_word(name, number)} {words}")
    return bytes(document.output())


def encrypted_pdf_bytes() -> bytes:
    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(pdf_bytes("secret", 2))).pages:
        writer.add_page(page)
    writer.encrypt(user_password="hunter2", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def blank_pdf_bytes(pages: int = 2) -> bytes:
    document = FPDF()
    for _ in range(pages):
        document.add_page()
    return bytes(document.output())


def write_corpus(folder: Path, pdfs: int = 3, pages: int = 4) -> dict[str, Expected]:
    """A folder of mixed documents; returns each file's path relative to `folder` and what it
    must become."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, Expected] = {}

    def put(relative: str, data: bytes | str, outcome: Expected) -> None:
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        expected[relative] = outcome

    for n in range(pdfs):
        name = f"report-{n}.pdf"
        words = {p: page_word(name, p) for p in range(1, pages + 1)}
        put(f"pdfs/{name}", pdf_bytes(name, pages), Expected("COMPLETED", words))
    put("notes/guide.md", "# Guide\n\nThe markdown word mdzqword here.\n", Expected(
        "COMPLETED", {1: "mdzqword"}))  # fmt: skip
    put("notes/plain.txt", "Plain text with txtzqword inside.\n", Expected(
        "COMPLETED", {1: "txtzqword"}))  # fmt: skip
    html = (
        "<html><head><title>T</title><script>var hidden = 'scriptzq';</script></head>"
        "<body><h1>Heading</h1><p>An html paragraph with htmlzqword.</p></body></html>"
    )
    put("web/page.html", html, Expected("COMPLETED", {1: "htmlzqword"}))
    put("notes/letter.docx", docx_bytes("Letter", "A word file with docxzqword."), Expected(
        "COMPLETED", {1: "docxzqword"}))  # fmt: skip
    put("bad/broken.docx", b"PK\x03\x04 not a zip", Expected(
        "FAILED", reason="not a readable DOCX"))  # fmt: skip
    put("bad/corrupt.pdf", b"%PDF-1.4\nthis is not really a pdf\n", Expected(
        "FAILED", reason="not a readable PDF"))  # fmt: skip
    put("bad/locked.pdf", encrypted_pdf_bytes(), Expected("FAILED", reason="encrypted"))
    put("bad/empty.pdf", b"", Expected("FAILED", reason="empty file"))
    put("bad/blank.pdf", blank_pdf_bytes(), Expected("FAILED", reason="no text layer"))
    put("bad/archive.xyz", b"binary", Expected("FAILED", reason="unsupported type"))
    return expected


def docx_bytes(heading: str, paragraph: str) -> bytes:
    """A minimal Word document (the three parts Word itself needs), built without Word."""
    namespace = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = (
        f'<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>{heading}</w:t></w:r></w:p>'
        f"<w:p><w:r><w:t>{paragraph}</w:t></w:r></w:p>"
    )
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
        ),
        "word/document.xml": (
            f'<w:document xmlns:w="{namespace}"><w:body>{body}</w:body></w:document>'
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return out.getvalue()
