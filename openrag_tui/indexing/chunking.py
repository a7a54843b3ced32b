"""Split a document's text into overlapping chunks of about `size` characters, each knowing the
pages it came from (a chunk that crosses a page break names both pages).

Cuts fall on whitespace when there is some in the last half of a window, so words stay whole.
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE_JOINER = "\n\n"


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    pages: tuple[int, ...]  # 1-based page numbers


def check_sizes(size: int, overlap: int) -> None:
    if size < 1:
        raise ValueError(f"the chunk size must be 1 or more (got {size})")
    if not 0 <= overlap < size:
        raise ValueError(f"the chunk overlap must be 0 or more and below {size} (got {overlap})")


def chunk_pages(pages: tuple[str, ...], size: int, overlap: int) -> list[Chunk]:
    """Chunks over the pages joined by a blank line, numbered from 0."""
    check_sizes(size, overlap)
    text, spans = _join(pages)
    chunks: list[Chunk] = []
    start = 0
    while start < len(text):
        end = _cut(text, start, size)
        body = text[start:end].strip()
        if body:
            chunks.append(Chunk(len(chunks), body, _pages_of(spans, start, end)))
        if end >= len(text):
            break
        start = _next_start(text, start, end, overlap)
    return chunks


def _join(pages: tuple[str, ...]) -> tuple[str, list[tuple[int, int, int]]]:
    """The joined text and each page's (start, end, number)."""
    spans = []
    position = 0
    for number, page in enumerate(pages, 1):
        spans.append((position, position + len(page), number))
        position += len(page) + len(PAGE_JOINER)
    return PAGE_JOINER.join(pages), spans


def _cut(text: str, start: int, size: int) -> int:
    end = start + size
    if end >= len(text):
        return len(text)
    space = max(text.rfind(" ", start + size // 2, end), text.rfind("\n", start + size // 2, end))
    return space + 1 if space > start else end


def _next_start(text: str, start: int, end: int, overlap: int) -> int:
    """Back `overlap` characters from the cut, then forward to a word start; always advances."""
    candidate = end - overlap
    if overlap:
        space = text.find(" ", candidate, end)
        candidate = space + 1 if space != -1 else candidate
    return candidate if candidate > start else end


def _pages_of(spans: list[tuple[int, int, int]], start: int, end: int) -> tuple[int, ...]:
    """Pages whose non-blank text the window [start, end) touches."""
    return tuple(n for s, e, n in spans if s < end and start < e) or (spans[-1][2],)
