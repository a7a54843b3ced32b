"""`?`: every key of the screen below, generated from its live bindings (keymap included)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

from openrag_tui.formats import plain


class HelpScreen(ModalScreen[None]):
    """Key, what it does, and the id to rebind it in keymap.toml."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help-close"),
    ]

    def __init__(self, title: str, bindings: dict[str, ActiveBinding], keymap_file: str) -> None:
        super().__init__()
        self.title_text = title
        self.key_bindings = bindings
        self.keymap_file = keymap_file

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"[b]Keys: {self.title_text}[/]", id="help-title")
            yield DataTable(id="help-keys", cursor_type="row", zebra_stripes=False)
            yield Static(
                Text.assemble(
                    ("arrows, pgup/pgdn, home/end move; enter opens; tab changes table\n", "dim"),
                    "Rebind any key by id in ",
                    plain(self.keymap_file),
                    ("\nctrl+p: command palette · esc: close", "dim"),
                ),
                id="help-footer",
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("key")  # sized to its keys: `^c, super+c` is never cut
        table.add_column("action", width=30)
        table.add_column("id", width=14)
        keys_by_action: dict[str, list[str]] = {}
        first: dict[str, ActiveBinding] = {}
        for active in self.key_bindings.values():
            binding = active.binding
            if binding.description and isinstance(active.node, (Screen, App)):
                keys_by_action.setdefault(binding.action, []).append(
                    self.app.get_key_display(binding)
                )
                if binding.id or binding.action not in first:  # prefer the rebindable one
                    first[binding.action] = active
        # the panel's own (rebindable) keys first, Textual's built-in ones after
        ordered = sorted(first.items(), key=lambda item: item[1].binding.id is None)
        for action, active in ordered:
            label = active.binding.description + ("" if active.enabled else " (unavailable)")
            keys = ", ".join(keys_by_action[action])
            table.add_row(plain(keys), plain(label), active.binding.id or "", key=action)
