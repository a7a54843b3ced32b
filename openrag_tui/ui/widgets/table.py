"""The panel's one kind of table: rows by key, a row cursor that stays on its row across
refills, and Home/End that go to the first and last row (DataTable's own scroll sideways).

A refill touches only what changed. DataTable's own way (clear, add every row, measure every
cell through the console on the next idle) cost ~0.5 s a refresh at 1,000 nodes, and adding a
column to a filled table measured its whole column once per row (30 s at 1,000 rows). Textual
is pinned: the few private parts used here (`_data`, `_row_locations`, `_update_count`, the two
sizing hooks) are DataTable's own bookkeeping, used the way its `update_cell` and `sort` do.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets._data_table import CellKey, RowKey, default_cell_formatter

from openrag_tui.formats import plain, safe
from openrag_tui.ui.widgets.textbox import same


class Drawn:
    """A cell whose Text is made when it is first drawn: most rows of a big table never are.

    Two are the same cell when made by the same function from equal arguments, so a refill
    compares them without making either; `width` is the cells it will take."""

    __slots__ = ("_args", "_make", "_text", "width")

    def __init__(self, width: int, make: Callable[..., Text], *args: Hashable) -> None:
        self.width = width
        self._make = make
        self._args = args
        self._text: Text | None = None

    def __rich__(self) -> Text:
        if self._text is None:
            self._text = self._make(*self._args)
        return self._text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Drawn):
            return NotImplemented
        return self._make is other._make and self._args == other._args

    def __hash__(self) -> int:
        return hash((self._make, self._args))

    def __str__(self) -> str:
        return self.__rich__().plain

    def __repr__(self) -> str:
        return f"<drawn {self.__rich__().plain!r}>"


Cell = str | Text | Drawn


class KeyedTable(DataTable):
    """A row-cursor table whose rows are given whole, the cursor kept on the same key.

    `COLUMNS` are (label, width); a width of None sizes the column to its content, so a
    figure is never cut. Rows are one line and have no labels."""

    COLUMNS: Sequence[tuple[str, int | None]] = ()
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
    ]

    def __init__(self, *, id: str | None = None, columns: Sequence[tuple[str, int | None]] = ()):
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._columns = tuple(columns) or tuple(self.COLUMNS)
        self.cursor_foreground_priority = "renderable"  # cells keep their own colours
        #: the cells last given for each row, in the order shown: what the next refill compares
        self._given: dict[str, tuple[Cell, ...]] = {}

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
        """Show these rows. A `str` cell is shown as plain text (DataTable would read it as
        markup): names from outside cannot style, link or break the table.

        The same keys as before (in any order) update in place: rows reordered, the cells
        that differ replaced, nothing redrawn when nothing changed, the scroll kept. Other
        keys replace the rows wholesale, as DataTable's clear and add do."""
        given = [(key, tuple(cells)) for key, cells in rows]
        new = dict(given)
        selected = self.selected_key
        if len(new) != len(given) or new.keys() != self._given.keys():
            self._replace(given)  # duplicate keys raise there, as DataTable's add_row does
        elif self._update(new):
            self._update_count += 1
            self.refresh()
        self._given = new
        if selected is not None and selected in self.rows:
            self.select(selected)

    def _replace(self, rows: list[tuple[str, tuple[Cell, ...]]]) -> None:
        self._given = {}
        self.clear()
        for key, cells in rows:
            self.add_row(*(_shown(cell) for cell in cells), key=key)

    def _update(self, new: dict[str, tuple[Cell, ...]]) -> bool:
        """Put the rows in `new`'s order and replace the cells that changed; whether any did."""
        changed = list(new) != list(self._given)
        if changed:  # what DataTable.sort does, to an order of our own
            self._row_locations = TwoWayDict({RowKey(key): index for index, key in enumerate(new)})
        columns = self.ordered_columns
        count = len(columns)
        for key, cells in new.items():
            old = self._given[key]
            if cells is old:
                continue
            if len(cells) == len(old) == count:
                indexes: Iterable[int] = [
                    index
                    for index, (cell, before) in enumerate(zip(cells, old, strict=True))
                    if not (cell is before or same(cell, before))
                ]
                if not indexes:
                    continue
            else:  # a column came or went: the whole row
                indexes = range(count)
            changed = True
            data = self._data[RowKey(key)]
            for index in indexes:
                shown = _shown(cells[index]) if index < len(cells) else None
                column = columns[index]
                data[column.key] = shown
                width = _width(shown)
                if width > column.content_width:  # columns grow, as DataTable's sizing does
                    column.content_width = width
                    self._require_update_dimensions = True
        if self._require_update_dimensions:
            self.check_idle()
        return changed

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Size the columns to the new rows' cells by their text (DataTable asks the console
        to measure every cell, a system call each), then let DataTable size the table."""
        columns = self.columns
        for row_key in new_rows:
            for column_key, cell in self._data.get(row_key, {}).items():
                column = columns.get(column_key)
                if column is not None:
                    column.content_width = max(column.content_width, _width(cell))
        super()._update_dimensions(())

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        """DataTable's rule, once per column: a cell narrower than its column sizes the column
        to its widest cell (or label) again; wider ones widen it. (DataTable measured the
        whole column again for each such cell: a new column over 1,000 rows took 30 s.)"""
        by_column: dict[object, list[int]] = {}
        for row_key, column_key in updated_cells:
            if row_key in self.rows and column_key in self.columns:
                cell = self._data[row_key][column_key]
                by_column.setdefault(column_key, []).append(_formatted_width(cell))
        for column_key, widths in by_column.items():
            column = self.columns[column_key]
            label = _width(column.label)
            if min(widths) < column.content_width:
                cells = (_formatted_width(data.get(column_key)) for data in self._data.values())
                column.content_width = max(label, *cells)
            else:
                column.content_width = max(label, *widths)
        self._require_update_dimensions = True

    def select(self, key: str) -> None:
        """Put the cursor on the row of `key` (nothing happens for an unknown key)."""
        if key in self.rows:
            self.move_cursor(row=self.get_row_index(key), animate=False)


def _shown(cell: Cell) -> Text | Drawn:
    """What the table holds for a cell: a `str` drawn as `plain` makes it when it is drawn
    (its width is known from the text alone; a refresh changes thousands of figures)."""
    if isinstance(cell, str):
        return Drawn(_text_width(safe(cell)), plain, cell)
    return cell


def _width(cell: object) -> int:
    """What DataTable's measure gives a one-line table cell: its widest line."""
    if cell is None:
        return 0
    if isinstance(cell, Drawn):
        return cell.width
    return _text_width(cell.plain if isinstance(cell, Text) else str(cell))


def _text_width(text: str) -> int:
    lines = text.splitlines()
    if len(lines) == 1:
        return cell_len(lines[0])
    return max((cell_len(line) for line in lines), default=0)


def _formatted_width(cell: object) -> int:
    """The width DataTable's column sizing gives a cell (it formats None as `None`)."""
    return _width(default_cell_formatter(cell, wrap=False, height=1))
