"""HTML with the standard library's parser: visible text, headings as Markdown `#` lines.

Scripts, styles and the head are dropped; block elements end a paragraph.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from openrag_tui.indexing.loaders.base import Document, decode_text, single_page

_SKIP = {"script", "style", "head", "template", "noscript"}
_BLOCKS = {
    "p", "div", "section", "article", "li", "tr", "br", "table", "ul", "ol", "pre",
    "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "title", "header", "footer",
}  # fmt: skip
_HEADINGS = {f"h{n}": "#" * n for n in range(1, 7)}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
            if tag in _HEADINGS:
                self.parts.append(_HEADINGS[tag] + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(re.sub(r"\s+", " ", data))


def to_markdown(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    paragraphs = (p.strip() for p in re.split(r"\n\s*\n", "".join(parser.parts)))
    return "\n\n".join(p for p in paragraphs if p)


def load(data: bytes) -> Document:
    text = to_markdown(decode_text(data))
    return single_page("html", text)
