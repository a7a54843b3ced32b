"""A yes/no question for destructive or surprising actions: `y`, `n` or escape.

The answer line is always on screen: long details (the processes a stop ends) scroll in a box
of their own, with the arrows, PageUp/PageDown, Home and End.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from openrag_tui.formats import plain


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True on `y`, False on `n` or escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
        Binding("down", "scroll('down')", "Scroll down", show=False),
        Binding("up", "scroll('up')", "Scroll up", show=False),
        Binding("pagedown", "scroll('page_down')", "Page down", show=False),
        Binding("pageup", "scroll('page_up')", "Page up", show=False),
        Binding("end", "scroll('end')", "End", show=False),
        Binding("home", "scroll('home')", "Home", show=False),
    ]

    def __init__(
        self, question: str, yes: str = "yes", no: str = "no", details: str | None = None
    ) -> None:
        super().__init__()
        self.question = question
        self.details = details
        self.yes, self.no = yes, no

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(plain_lines(self.question), id="question")
            if self.details:
                with VerticalScroll(id="details"):
                    yield Static(plain_lines(self.details))
            yield Static(f"[b]y[/] {self.yes}    [b]n[/] {self.no}", id="choices")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def action_scroll(self, how: str) -> None:
        if not self.details:
            return
        box = self.query_one("#details", VerticalScroll)
        moves = {
            "down": box.scroll_down,
            "up": box.scroll_up,
            "page_down": box.scroll_page_down,
            "page_up": box.scroll_page_up,
            "end": box.scroll_end,
            "home": box.scroll_home,
        }
        moves[how](animate=False)


def plain_lines(text: str) -> Text:
    """Several lines of outside text, each one made safe."""
    return Text("\n").join(plain(line) for line in text.split("\n"))
