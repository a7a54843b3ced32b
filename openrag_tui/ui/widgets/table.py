"""The panel's one kind of table: rows by key, a row cursor that stays on its row across
refills, and Home/End that go to the first and last row (DataTable's own scroll sideways)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from openrag_tui.formats import plain

Cell = str | Text


class KeyedTable(DataTable):
    """A row-cursor table whose rows are replaced wholesale, the cursor kept on the same key.

    `COLUMNS` are (label, width); a width of None sizes the column to its content, so a
    figure is never cut."""

    COLUMNS: Sequence[tuple[str, int | None]] = ()
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    def __init__(self, *, id: str | None = None, columns: Sequence[tuple[str, int | None]] = ()):
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._columns = tuple(columns) or tuple(self.COLUMNS)
        self.cursor_foreground_priority = "renderable"  # cells keep their own colours

    def on_mount(self) -> None:
        for label, width in self._columns:
            self.add_column(label, width=width)

    async def _on_idle(self, event: events.Idle) -> None:
        """DataTable sizes its columns when idle, but caches drawn lines by a count that sizing
        leaves alone: a header drawn before (the table one line tall) stayed at the old widths
        over rows drawn at the new ones, until the next refill."""
        sizing = self._require_update_dimensions
        await super()._on_idle(event)
        if sizing:
            self._update_count += 1
            self.refresh()

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor; None for an empty table."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def refill(self, rows: Iterable[tuple[str, Sequence[Cell]]]) -> None:
        """Replace the rows. A `str` cell is shown as plain text (DataTable would read it as
        markup): names from outside cannot style, link or break the table."""
        selected = self.selected_key
        self.clear()
        for key, cells in rows:
            self.add_row(*(plain(c) if isinstance(c, str) else c for c in cells), key=key)
        if selected is not None and selected in self.rows:
            self.select(selected)

    def select(self, key: str) -> None:
        """Put the cursor on the row of `key` (nothing happens for an unknown key)."""
        if key in self.rows:
            self.move_cursor(row=self.get_row_index(key), animate=False)
