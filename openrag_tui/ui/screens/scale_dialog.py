"""`s` on a pool: a new size, prefilled with the current one, and what it would give right now."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from openrag_tui.cluster.allocation import PoolStatus, scale_preview
from openrag_tui.ui.keys import key
from openrag_tui.ui.screens.base import PanelModal


def preview_text(pool: PoolStatus, text: str) -> Text:
    """`4 would run now, 2 stay pending` — or why the input is not a size."""
    if not (text.isascii() and text.isdigit()):
        return Text("a pool size is a whole number of 0 or more", style="red")
    preview = scale_preview(pool, int(text))
    line = Text(f"{preview.running} would run now")
    if preview.pending:
        line.append(f", {preview.pending} would stay pending", style="yellow")
        line.append(" (not enough room now)", style="dim")
    if preview.retiring:
        line.append(f", {preview.retiring} retire after their work", style="cyan")
    if preview.size == 0:
        line.append("; 0 ends the pool (you will be asked)", style="bold")
    return line


class ScaleScreen(PanelModal):
    """Dismisses with the new size, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [key("scale-cancel", "escape", "cancel", "Cancel")]

    def __init__(self, pool: PoolStatus) -> None:
        super().__init__()
        self.pool = pool

    def compose(self) -> ComposeResult:
        pool = self.pool
        ours, theirs = pool.ours, pool.openrags
        header = Text.assemble(
            (f"Scale the {pool.name} pool", "bold"),
            f"  now {ours.alive} alive, {ours.pending} pending, target {pool.target}; "
            f"{pool.gpus_per_actor:g} GPU each",
        )
        if theirs.alive or theirs.pending:
            header.append(
                f"\nOpenRAG's own {theirs.alive + theirs.pending} {pool.name} actors are not "
                "resized from here (they still hold GPUs).",
                style="dim",
            )
        with Vertical(id="dialog"):
            yield Static(header)
            yield Input(str(pool.target), type="integer", id="size")
            yield Static(id="verdict")
            yield Static("[dim]enter: apply and write to the .env · esc: cancel[/]")

    def on_mount(self) -> None:
        self._judge(self.query_one(Input).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._judge(event.value)

    def _judge(self, text: str) -> None:
        self.query_one("#verdict", Static).update(preview_text(self.pool, text.strip()))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text.isascii() and text.isdigit():
            self.dismiss(int(text))

    def action_cancel(self) -> None:
        self.dismiss(None)
