"""A Static that lets an update to what it already shows go: the main screen gives its lines
again on every refresh, and each update of a Static lays the whole screen out again (its height
may change), which at 1,000 nodes cost more than the refresh itself."""

from __future__ import annotations

from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static


class TextBox(Static):
    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        if not same(self.content, content):
            super().update(content, layout=layout)


def same(a: object, b: object) -> bool:
    """Whether two cells or lines look the same (rich's Text equality leaves out the base
    style and the justification)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, Text):
        return (
            a.plain == b.plain
            and a.spans == b.spans
            and a.style == b.style
            and a.justify == b.justify
            and a.overflow == b.overflow
            and a.no_wrap == b.no_wrap
            and a.end == b.end
        )
    return a == b
