"""The main screen: snapshots of recorded clusters, and the keyboard flows an operator uses."""

from __future__ import annotations

from pathlib import Path

from openrag_tui.ui.screens.help import HelpScreen
from openrag_tui.ui.screens.main import MainScreen, backoff_seconds, next_interval
from openrag_tui.ui.screens.node_detail import NodeDetailScreen
from openrag_tui.ui.widgets.cluster_tables import NodesTable, PoolsTable
from tests.support import synthetic
from tests.ui.conftest import settle


def _dead_worker() -> dict:
    payloads = synthetic.recorded()
    synthetic.node_row(payloads, synthetic.WORKER_ID)["state"] = "DEAD"
    return payloads


def _physical_gpus() -> dict:
    payloads = synthetic.recorded()
    for row in payloads["nodes_summary"]["data"]["summary"]:
        count = 4 if row["raylet"]["isHeadNode"] else 2
        row["gpus"] = synthetic.nvml_gpus(count, used_mib=12288.0, utilization=41.0)
    return payloads


def test_first_screen_80x24(snap_compare, recorded_app) -> None:
    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=settle)


def test_first_screen_160x48(snap_compare, recorded_app) -> None:
    assert snap_compare(recorded_app(), terminal_size=(160, 48), run_before=settle)


def test_dead_node_80x24(snap_compare, recorded_app) -> None:
    app = recorded_app(payloads=_dead_worker())
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_physical_gpus_80x24(snap_compare, recorded_app) -> None:
    app = recorded_app(payloads=_physical_gpus())
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_physical_gpus_160x48(snap_compare, recorded_app) -> None:
    app = recorded_app(payloads=_physical_gpus())
    assert snap_compare(app, terminal_size=(160, 48), run_before=settle)


def test_dashboard_unreachable_80x24(snap_compare, unreachable_app) -> None:
    assert snap_compare(unreachable_app(), terminal_size=(80, 24), run_before=settle)


def test_help_80x24(snap_compare, recorded_app) -> None:
    async def open_help(pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")

    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=open_help)


def test_node_detail_80x24(snap_compare, recorded_app) -> None:
    async def open_head(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")

    app = recorded_app(payloads=_physical_gpus())
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_head)


async def test_tables_show_both_nodes_and_both_pools(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        nodes = app.screen.query_one(NodesTable)
        pools = app.screen.query_one(PoolsTable)
        assert nodes.row_count == 2
        # the recorded actors are OpenRAG's own: each pool gets a line for them
        assert [str(pools.get_row_at(i)[0]) for i in range(pools.row_count)] == [
            "indexer",
            "└ openrag",
            "marker",
            "└ openrag",
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


async def test_filter_narrows_the_nodes_and_escape_clears_it(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        nodes = app.screen.query_one(NodesTable)
        await pilot.press("slash", *synthetic.WORKER_ID[:6])
        await pilot.pause()
        assert nodes.row_count == 1
        assert nodes.coordinate_to_cell_key((0, 0)).row_key.value == synthetic.WORKER_ID
        await pilot.press("enter")  # keep the filter, back to the table
        assert nodes.has_focus and nodes.row_count == 1
        await pilot.press("slash", "escape")
        await pilot.pause()
        assert nodes.row_count == 2


async def test_sort_and_interval_keys_change_the_view(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        await pilot.press("o")
        assert screen.sort == "free"
        assert "sort: free" in str(screen.query_one("#legend").render())
        await pilot.press("i")
        assert screen.interval == 5.0
        assert "every 5s" in str(screen.query_one("#legend").render())


async def test_enter_on_a_node_shows_its_actors(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeDetailScreen)
        assert app.screen.node.node.is_head
        actors = {actor.name for actor in app.screen.node.actors}
        assert actors == {"idx-head-0", "idx-head-1", "marker-head", "trainer-pg"}
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_help_lists_every_key_of_the_screen(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        listed = {row for row in app.screen.query_one("DataTable").rows}
        assert {"refresh_now", "toggle_pause", "filter", "cycle_sort", "quit"} <= {
            key.value for key in listed
        }


async def test_keys_can_be_rebound_in_the_keymap_file(recorded_app, tmp_path: Path) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('[keys]\nrefresh = "f5"\n')
    app = recorded_app(keymap_file=keymap)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        client = app.backend._client
        before = len(client.requests)
        await pilot.press("r")  # no longer bound
        await pilot.pause()
        assert len(client.requests) == before
        await pilot.press("f5")
        await settle(pilot)
        assert len(client.requests) > before


async def test_a_broken_keymap_is_reported_not_fatal(recorded_app, tmp_path: Path) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text("[keys\n")
    app = recorded_app(keymap_file=keymap)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.keymap.problems and "default keys are used" in app.keymap.problems[0]


async def test_palette_offers_the_screens_actions(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert {"Refresh", "Pause", "Filter", "Sort", ".env", "Help", "Quit"} <= set(titles)


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
        await pilot.press("question_mark")  # the rest of the panel keeps working
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(2.0, n) for n in (1, 2, 3, 4, 5, 6)] == [2, 4, 8, 16, 30, 30]


def test_interval_cycle() -> None:
    assert [next_interval(s) for s in (1, 2, 3, 5, 10, 30)] == [2, 5, 5, 10, 30, 1]
