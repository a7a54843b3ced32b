"""The panel's table widget: what an operator sees of its rows, its header and its cursor while
the rows change.

A refill updates in place what it can; what it shows must be what DataTable's own clear and
add showed (the reference below is the refill the panel had before), step for step.
"""

from __future__ import annotations

from collections.abc import Sequence
from random import Random

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from openrag_tui.formats import plain
from openrag_tui.ui.widgets.table import Cell, Drawn, KeyedTable

COLUMNS = (("node", None), ("state", None))
EXTRA = "extra"


class _Table(KeyedTable):
    COLUMNS = COLUMNS
    DEFAULT_CSS = "_Table { height: auto; }"


class _Reference(DataTable):
    """The refill as it was: clear, add every row, the cursor back on its key."""

    DEFAULT_CSS = "_Reference { height: auto; }"

    def on_mount(self) -> None:
        self.cursor_foreground_priority = "renderable"
        for label, width in COLUMNS:
            self.add_column(label, width=width)

    def refill(self, rows: Sequence[tuple[str, Sequence[Cell]]]) -> None:
        selected = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value \
            if self.row_count else None  # fmt: skip
        self.clear()
        for key, cells in rows:
            self.add_row(*(plain(c) if isinstance(c, str) else c for c in cells), key=key)
        if selected is not None and selected in self.rows:
            self.move_cursor(row=self.get_row_index(selected), animate=False)


class _App(App):
    def compose(self) -> ComposeResult:
        yield _Table()


class _Both(App):
    """Ours and the reference, side by side (mounted afresh for each sequence)."""


async def test_the_header_follows_columns_widened_by_new_rows() -> None:
    """A frame drawn between a refill and the idle that sizes the columns (the table one line
    tall, only its header drawn) must not leave that header on screen at the old widths."""
    app = _App()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(_Table)
        await pilot.pause()
        table.refill([("a", ["vm (192.0.2.2) 53dec3", "ALIVE"])])
        table.render_line(0)  # the frame drawn before the idle
        await table._on_idle(events.Idle())  # the idle sizes the columns (no Resize yet)
        header, row = table.render_line(0).text, table.render_line(1).text
        assert header.index("state") == row.index("ALIVE")


CELLS: list[Cell] = [
    *("", "a", "0.5", "8/8", "vm (192.0.2.2) 53dec3", "界界", "[b]x[/b]", "a\x1bb", "l1\u2028l2"),
    *(Text(word, style=style) for word in ("ALIVE", "x") for style in ("", "green", "bold red")),
]


def _steps(random: Random) -> list[tuple]:
    """Refills (mostly of the keys shown, in the same or another order), cursor moves, a column
    added or removed."""
    steps: list[tuple] = []
    keys: list[str] = []
    for _ in range(random.randint(1, 10)):
        kind = random.choice(("refill",) * 6 + ("cursor", "column"))
        if kind == "refill":
            if not keys or random.random() < 0.2:
                keys = random.sample("abcdef", random.randint(0, 6))
            elif random.random() < 0.3:
                keys = random.sample(keys, len(keys))
            steps.append((kind, list(keys)))
        elif kind == "cursor":
            steps.append((kind, random.randint(0, 5)))
        else:
            steps.append((kind, random.random() < 0.5))
    return steps


def _shown(table: DataTable) -> tuple:
    """Everything an operator sees of a table, and where its cursor is."""
    lines = [[(segment.text, segment.style) for segment in table.render_line(y)]
             for y in range(table.row_count + 1)]  # fmt: skip
    keys = [table.coordinate_to_cell_key((row, 0)).row_key.value for row in range(table.row_count)]
    cells = [[str(cell) for cell in table.get_row_at(row)] for row in range(table.row_count)]
    widths = [column.get_render_width(table) for column in table.columns.values()]
    cursor = keys[table.cursor_row] if keys else None
    return lines, keys, cells, widths, cursor


async def test_a_refill_shows_what_clear_and_add_showed() -> None:
    """Rows, their order, every drawn segment (text and style), column widths (which only grow,
    as DataTable's did) and the cursor's row, after each refill, cursor move, column added or
    removed: 25 seeded sequences of steps."""
    app = _Both()
    async with app.run_test(size=(120, 20)) as pilot:
        for seed in range(25):
            random = Random(seed)
            ours, reference = _Table(), _Reference(cursor_type="row", zebra_stripes=False)
            await app.mount_all([ours, reference])
            app.set_focus(None)
            await pilot.pause()
            cells: dict[tuple, Cell] = {}
            for step in _steps(random):
                if step[0] == "refill":  # each cell kept or changed, as a refresh does
                    rows = [(key, [cells.get((key, column))
                                   if random.random() < 0.6 and (key, column) in cells
                                   else random.choice(CELLS) for column in ours.columns])
                            for key in step[1]]  # fmt: skip
                    cells = {(key, column): cell for key, row in rows
                             for column, cell in zip(ours.columns, row, strict=True)}  # fmt: skip
                    for table in (ours, reference):
                        table.refill(rows)
                elif step[0] == "cursor":
                    for table in (ours, reference):
                        table.move_cursor(row=step[1], animate=False)
                elif step[1] and EXTRA not in ours.columns:
                    for table in (ours, reference):
                        table.add_column(EXTRA, key=EXTRA)
                elif not step[1] and EXTRA in ours.columns:
                    for table in (ours, reference):
                        table.remove_column(EXTRA)
                await pilot.pause()
                assert _shown(ours) == _shown(reference), (seed, step)
            await ours.remove()
            await reference.remove()


async def test_an_unchanged_refill_draws_nothing_and_keeps_the_scroll() -> None:
    """The panel gives its rows again on every refresh: the same rows are not drawn again,
    and changed ones leave the operator's scroll and cursor where they were (clear and add
    scrolled back to the top, then to the cursor)."""
    app = _App()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(_Table)
        table.styles.height = 8
        rows = [(f"n{i:02}", [f"node {i}", "ALIVE"]) for i in range(50)]
        table.refill(rows)
        await pilot.pause()
        table.move_cursor(row=30, animate=False)
        table.scroll_to(y=25, animate=False)
        await pilot.pause()
        count = table._update_count
        table.refill([(key, list(cells)) for key, cells in rows])
        assert table._update_count == count
        rows[31] = ("n31", ["node 31", "DEAD"])
        table.refill(rows)
        await pilot.pause()
        assert table.selected_key == "n30" and table.scroll_y == 25
        assert "DEAD" in table.render_line(31 - 25 + 1).text


async def test_rows_never_drawn_are_never_made() -> None:
    """A refresh of 1,000 rows makes the Text of the rows on screen only."""
    app = _App()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(_Table)
        table.styles.height = 8
        table.refill([(f"n{i:03}", [f"node {i}", "ALIVE"]) for i in range(1000)])
        await pilot.pause()
        table.refill([(f"n{i:03}", [f"node {i}", "DEAD"]) for i in range(1000)])
        await pilot.pause()
        states = [table.get_row_at(row)[1] for row in range(1000)]
        assert all(isinstance(cell, Drawn) for cell in states)
        made = [row for row, cell in enumerate(states) if cell._text is not None]
        assert made and max(made) < 10
        assert str(states[999]) == "DEAD"  # made when asked for
