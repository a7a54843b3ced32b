"""What an operator tripped on, keyboard only, at 80×24 and 60×20: each one held to its fix."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from openrag_tui.ui.screens.batches import BatchesScreen
from openrag_tui.ui.screens.cluster_log import ClusterLogScreen
from openrag_tui.ui.screens.confirm import ConfirmScreen
from openrag_tui.ui.screens.main import MainScreen
from openrag_tui.ui.widgets.cluster_tables import NodesTable, PoolsTable
from tests.ui.conftest import FROZEN_NOW, settle, wait_for
from tests.ui.test_cluster_log import RAY_PROCESSES


def _notified(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_start_when_a_cluster_already_answers_starts_nothing_and_says_so(
    recorded_app, env_copy: Path
) -> None:
    app = recorded_app()
    app.backend.cluster_answers = lambda: True  # the recorded dashboard answers
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("U")
        await wait_for(pilot, lambda: _notified(app), "a word about it")
        assert any("already answers" in n and "nothing to start" in n for n in _notified(app))
        assert isinstance(app.screen, MainScreen) and not app.screen_stack[1:]


def test_stop_confirmation_keeps_its_answer_line_at_80x24(snap_compare, recorded_app) -> None:
    """Forty processes: summarised by kind and session, listed in a box that scrolls (End), and
    `y stop / n keep` on screen all along."""
    app = recorded_app()
    app.backend.ray_processes = lambda: RAY_PROCESSES

    async def ask_and_scroll(pilot) -> None:
        await settle(pilot)
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the question")
        await pilot.press("end")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=ask_and_scroll)


async def test_pagedown_and_end_scroll_the_processes(recorded_app) -> None:
    app = recorded_app()
    app.backend.ray_processes = lambda: RAY_PROCESSES
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        box = app.screen.query_one("#details")
        assert box.scroll_y == 0 and box.max_scroll_y > 0
        await pilot.press("pagedown")
        await pilot.pause()
        assert box.scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y
        assert app.screen.query_one("#choices").region.bottom <= 24
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, ClusterLogScreen)


async def test_invalid_values_are_shown_as_the_file_has_them_marked(
    recorded_app, env_copy: Path
) -> None:
    env_copy.write_text(
        env_copy.read_text().replace("RAY_POOL_SIZE=4", "RAY_POOL_SIZE=abc")
        + "MARKER_NUM_GPUS=1.5\n"
    )
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pools = app.screen.query_one(PoolsTable)
        indexer = [str(cell) for cell in pools.get_row("indexer")]
        marker = [str(cell) for cell in pools.get_row("marker")]
        assert indexer[1] == "abc✗" and marker[4] == "1.5✗"
        problems = str(app.screen.query_one("#env-problems").render())
        assert ".env: 2 errors" in problems
        assert "RAY_POOL_SIZE must be a whole number of 0 or more (got 'abc')." in problems
        assert "MARKER_NUM_GPUS above 1 must be a whole number of GPUs (got '1.5')." in problems


async def test_pause_and_read_only_are_said_at_80_columns(recorded_app) -> None:
    app = recorded_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        bar = str(app.screen.query_one("#status-bar").render())
        assert "PAUSED" in bar and "READ-ONLY" in bar
        requests = len(app.backend._client.requests)
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(app.backend._client.requests) > requests  # read once, still paused
        assert app.screen.paused and any("Paused: read once" in n for n in _notified(app))
        await pilot.press("plus")
        await pilot.pause()
        assert any("Read-only: Pool +1 actor is off" in n for n in _notified(app))


def test_small_window_60x20(snap_compare, recorded_app) -> None:
    """What matters (READ-ONLY, PAUSED, the figures) stays; the URL goes first."""

    async def pause(pilot) -> None:
        await settle(pilot)
        await pilot.press("p")
        await pilot.pause()

    assert snap_compare(recorded_app(read_only=True), terminal_size=(60, 20), run_before=pause)


async def test_at_60_columns_the_bar_and_figures_are_whole(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        nodes = app.screen.query_one(NodesTable)
        rows = [[str(cell) for cell in nodes.get_row_at(i)] for i in range(nodes.row_count)]
        assert {(row[4], row[5]) for row in rows} == {("3/4", "1"), ("1.5/2", "0.5")}
        width = sum(column.get_render_width(nodes) for column in nodes.columns.values())
        assert width <= 60


async def test_the_filter_matches_the_role_and_says_when_nothing_matches(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        nodes = app.screen.query_one(NodesTable)
        await pilot.press("slash", "h", "e", "a", "d")
        await pilot.pause()
        assert nodes.row_count == 1
        await pilot.press("ctrl+u", "z", "z", "z")
        await pilot.pause()
        assert nodes.row_count == 0
        assert "no node matches" in str(app.screen.query_one("#legend").render())


async def test_home_and_end_move_in_the_batches_table(recorded_app, env_copy: Path) -> None:
    from openrag_tui.config import Settings
    from openrag_tui.indexing.batch import config_of
    from openrag_tui.indexing.ledger import Ledger

    volume = env_copy.parent / "data"
    volume.mkdir()
    env_copy.write_text(env_copy.read_text() + f"DATA_VOLUME={volume}\n")
    ledger = Ledger(volume / ".openrag-tui" / "ledger.sqlite")
    for n in range(5):
        ledger.add_batch(f"2026120{n}-0000{n}0-ab1{n}", "p", {}, False, config_of(Settings()),
                         [str(volume / "a.txt")], FROZEN_NOW - n)  # fmt: skip
    ledger.close()
    app = recorded_app(env_file=env_copy)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, BatchesScreen)
                and app.screen.query_one(DataTable).row_count == 5
            ),
            "the batches",
        )
        table = app.screen.query_one(DataTable)
        await pilot.press("end")
        assert table.cursor_row == 4
        await pilot.press("home")
        assert table.cursor_row == 0


async def test_an_outside_edit_is_read_and_said(recorded_app, env_copy: Path) -> None:
    app = recorded_app(env_watch_seconds=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        env_copy.write_text(env_copy.read_text().replace("RAY_POOL_SIZE=4", "RAY_POOL_SIZE=5"))
        await wait_for(
            pilot, lambda: any("changed on disk" in n for n in _notified(app)), "the word"
        )
        assert app.backend.workspace.settings.ray_pool_size == 5
