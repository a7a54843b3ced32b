"""The main screen: snapshots of the recorded cluster, and the refresh/pause/quit flows."""

from __future__ import annotations

from openrag_tui.ui.screens.main import MainScreen, backoff_seconds
from openrag_tui.ui.widgets.cluster_tables import NodesTable, PoolsTable
from tests.ui.conftest import settle


def test_first_screen_80x24(snap_compare, recorded_app) -> None:
    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=settle)


def test_first_screen_160x48(snap_compare, recorded_app) -> None:
    assert snap_compare(recorded_app(), terminal_size=(160, 48), run_before=settle)


def test_dashboard_unreachable_80x24(snap_compare, unreachable_app) -> None:
    assert snap_compare(unreachable_app(), terminal_size=(80, 24), run_before=settle)


async def test_tables_show_both_nodes_and_both_pools(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        nodes = app.screen.query_one(NodesTable)
        pools = app.screen.query_one(PoolsTable)
        assert nodes.row_count == 2
        assert [str(pools.get_row_at(i)[0]) for i in range(pools.row_count)] == [
            "indexer",
            "marker",
        ]


async def test_refresh_key_reads_the_dashboard_again(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        client = app.backend._client
        before = len(client.requests)
        await pilot.press("r")
        await settle(pilot)
        assert len(client.requests) > before


async def test_pause_stops_polling_and_says_so(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        await pilot.press("p")
        assert screen.paused and screen._next_poll is None
        assert "PAUSED" in str(screen.query_one("#status-bar").render())
        await pilot.press("p")
        await settle(pilot)
        assert not screen.paused and screen._next_poll is not None


async def test_q_quits(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_unreachable_dashboard_shows_a_banner_and_backs_off(unreachable_app) -> None:
    app = unreachable_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.failures == 1
        banner = screen.query_one("#banner")
        assert banner.display and "127.0.0.1:9" in str(banner.render())


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(2.0, n) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]
