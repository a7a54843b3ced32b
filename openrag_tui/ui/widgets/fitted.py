"""A one-line widget made of parts that fits itself to its width: on a narrow terminal the
least telling parts are dropped, whole (a figure or a word is never cut)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from openrag_tui.ui.widgets.textbox import same


@dataclass(frozen=True)
class Part:
    """One part of the line; the lowest `keep` goes first when the line does not fit."""

    text: Text
    keep: int


def fit(parts: Iterable[Part], width: int, separator: str) -> Text:
    """The parts joined, dropping the least kept ones until the line fits `width`."""
    kept = list(parts)
    while len(kept) > 1 and _width(kept, separator) > width:
        kept.remove(min(kept, key=lambda part: part.keep))
    return Text(separator).join(part.text for part in kept)


def _width(parts: list[Part], separator: str) -> int:
    return sum(part.text.cell_len for part in parts) + len(separator) * (len(parts) - 1)


class FittedLine(Widget):
    """Shows the parts given to `show`, fitted again whenever drawn (a resize included)."""

    DEFAULT_CSS = "FittedLine { height: 1; }"
    SEPARATOR = "  "

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._parts: list[Part] = []

    def show(self, parts: Iterable[Part]) -> None:
        """Show these parts; the same parts again draw nothing (the status line is given
        every second and after every refresh, and changes about once a second)."""
        parts = list(parts)
        if len(parts) == len(self._parts) and all(
            new.keep == old.keep and same(new.text, old.text)
            for new, old in zip(parts, self._parts, strict=True)
        ):
            return
        self._parts = parts
        self.refresh()

    def render(self) -> Text:
        return fit(self._parts, max(self.content_size.width, 1), self.SEPARATOR)
