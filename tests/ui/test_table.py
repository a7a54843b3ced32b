"""The panel's table widget: what an operator sees of its header while its rows change."""

from __future__ import annotations

from textual import events
from textual.app import App, ComposeResult

from openrag_tui.ui.widgets.table import KeyedTable


class _Table(KeyedTable):
    COLUMNS = (("node", None), ("state", None))
    DEFAULT_CSS = "_Table { height: auto; }"


class _App(App):
    def compose(self) -> ComposeResult:
        yield _Table()


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
