"""Pool keys on the recorded cluster: the scale dialog's preview, confirmation at 0, read-only.

tests/cluster/test_pools_panel.py drives the same keys against live pools.
"""

from __future__ import annotations

from textual.widgets import Input

from openrag_tui.ui.screens.confirm import ConfirmScreen
from openrag_tui.ui.screens.main import MainScreen
from openrag_tui.ui.screens.scale_dialog import ScaleScreen
from openrag_tui.ui.widgets.cluster_tables import PoolsTable
from tests.ui.conftest import settle


async def _focus_pools(pilot) -> None:
    await settle(pilot)
    pilot.app.screen.query_one(PoolsTable).focus()
    await pilot.pause()


def test_scale_dialog_80x24(snap_compare, recorded_app) -> None:
    async def open_dialog(pilot) -> None:
        await _focus_pools(pilot)
        await pilot.press("s", "ctrl+u", "8")

    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=open_dialog)


async def test_scale_dialog_is_prefilled_and_previews(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _focus_pools(pilot)
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ScaleScreen) and app.screen.pool.name == "indexer"
        assert app.screen.query_one(Input).value == "4"  # the .env's RAY_POOL_SIZE
        # none of the recorded indexers is ours (they are OpenRAG's): the plan starts from 0,
        # with room for 3 more of 0.5 GPU
        verdict = app.screen.query_one("#verdict")
        assert str(verdict.render()) == (
            "3 would run now, 1 would stay pending (not enough room now)"
        )
        await pilot.press("ctrl+u", "8")
        assert (
            str(verdict.render()) == "3 would run now, 5 would stay pending (not enough room now)"
        )
        await pilot.press("ctrl+u", "1")
        assert str(verdict.render()) == "1 would run now"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and not app.screen.requested


async def test_scaling_to_zero_asks_first(recorded_app) -> None:
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _focus_pools(pilot)
        await pilot.press("s", "ctrl+u", "0", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and "to 0" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and not app.screen.requested


async def test_read_only_has_no_pool_keys(recorded_app) -> None:
    app = recorded_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _focus_pools(pilot)
        actions = {active.binding.action for active in app.screen.active_bindings.values()}
        assert not {"resize(1)", "resize(-1)", "scale_dialog"} & actions
        await pilot.press("plus", "s")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and not app.screen.requested
