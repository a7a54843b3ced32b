"""The .env editor: problems inline, validated edits saved byte-exactly, conflicts never lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from openrag_tui.ui.backend import Backend
from openrag_tui.ui.screens.confirm import ConfirmScreen
from openrag_tui.ui.screens.env_editor import EditValueScreen, EnvEditorScreen
from openrag_tui.ui.screens.main import MainScreen
from openrag_tui.workspace import open_workspace
from tests.ui.conftest import DATA, settle, wait_for


@pytest.fixture
def guide_env(fixed_dir: Path) -> Path:
    path = fixed_dir / "guide" / ".env"
    path.parent.mkdir()
    shutil.copyfile(DATA / "guide.env", path)
    return path


async def _open_editor(pilot) -> EnvEditorScreen:
    await settle(pilot)
    await pilot.press("e")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, EnvEditorScreen)
    return screen


async def _select(pilot, screen: EnvEditorScreen, env_key: str) -> None:
    table = screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(env_key))
    await pilot.pause()


def test_editor_with_validation_errors_80x24(snap_compare, recorded_app, guide_env) -> None:
    async def open_on_address(pilot) -> None:
        screen = await _open_editor(pilot)
        await _select(pilot, screen, "RAY_ADDRESS")

    app = recorded_app(env_file=guide_env)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_on_address)


def test_editor_160x48(snap_compare, recorded_app, guide_env) -> None:
    app = recorded_app(env_file=guide_env)
    assert snap_compare(app, terminal_size=(160, 48), run_before=_open_editor)


def test_edit_dialog_shows_the_problem_as_you_type_80x24(
    snap_compare, recorded_app, guide_env
) -> None:
    async def type_bad_value(pilot) -> None:
        screen = await _open_editor(pilot)
        await _select(pilot, screen, "RAY_NUM_GPUS")
        await pilot.press("enter", "ctrl+u", "1", ".", "5")
        await pilot.pause()

    app = recorded_app(env_file=guide_env)
    assert snap_compare(app, terminal_size=(80, 24), run_before=type_bad_value)


async def test_main_screen_shows_env_problems_without_opening_anything(
    recorded_app, guide_env
) -> None:
    app = recorded_app(env_file=guide_env)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = str(app.screen.query_one("#env-problems").render())
        assert ".env: 3 errors" in text and "RAY_ADDRESS (line 16)" in text


async def test_editing_a_pool_size_saves_only_that_line(recorded_app, guide_env) -> None:
    before = guide_env.read_bytes().splitlines(keepends=True)
    app = recorded_app(env_file=guide_env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_editor(pilot)
        await _select(pilot, screen, "MARKER_POOL_SIZE")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EditValueScreen)
        assert app.screen.query_one(Input).value == "1"
        await pilot.press("ctrl+u", "3", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, EnvEditorScreen)
        assert app.backend.workspace.settings.marker_pool_size == 3
    after = guide_env.read_bytes().splitlines(keepends=True)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert [after[i] for i in changed] == [
        b"MARKER_POOL_SIZE=3 # Number of workers (typically 1 worker per cluster node)\n"
    ]


async def test_an_invalid_value_keeps_the_dialog_open_and_the_file_intact(
    recorded_app, guide_env
) -> None:
    before = guide_env.read_bytes()
    app = recorded_app(env_file=guide_env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_editor(pilot)
        await _select(pilot, screen, "RAY_POOL_SIZE")
        await pilot.press("enter", "ctrl+u", "minus", "1", "enter")
        await pilot.pause()
        assert isinstance(app.screen, EditValueScreen)
        assert "RAY_POOL_SIZE" in str(app.screen.query_one("#verdict").render())
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, EnvEditorScreen)
    assert guide_env.read_bytes() == before


async def test_another_key_changed_on_disk_is_kept_and_ours_saved_on_top(
    recorded_app, guide_env
) -> None:
    app = recorded_app(env_file=guide_env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_editor(pilot)
        await _select(pilot, screen, "RAY_POOL_SIZE")
        guide_env.write_text(guide_env.read_text() + "ADDED_BY_SOMEONE_ELSE=1\n")
        await pilot.press("enter", "ctrl+u", "2", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    text = guide_env.read_text()
    assert "ADDED_BY_SOMEONE_ELSE=1\n" in text and "\nRAY_POOL_SIZE=2\n" in text


@pytest.mark.parametrize("watched", [False, True], ids=["before-the-watch", "after-the-watch"])
async def test_the_same_value_changed_on_disk_asks_whatever_the_timing(
    recorded_app, guide_env, watched: bool
) -> None:
    """The dialog opened on 1; the file says 7 (the watcher may already show it); typing 8 and
    enter asks, with both values, and `n` keeps theirs."""
    app = recorded_app(env_file=guide_env, env_watch_seconds=0.1 if watched else None)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_editor(pilot)
        await _select(pilot, screen, "RAY_POOL_SIZE")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EditValueScreen)
        theirs = guide_env.read_text().replace("RAY_POOL_SIZE=1", "RAY_POOL_SIZE=7")
        guide_env.write_text(theirs)
        if watched:
            await wait_for(
                pilot,
                lambda: app.backend.workspace.settings.ray_pool_size == 7,
                "the watcher to read the outside edit",
            )
        await pilot.press("ctrl+u", "8", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        question = app.screen.question
        assert "you saw '1'" in question and "now says '7'" in question and "'8'" in question
        assert guide_env.read_text() == theirs  # nothing written yet
        await pilot.press("n")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert guide_env.read_text() == theirs


async def test_saving_over_a_changed_value_when_the_operator_says_so(
    recorded_app, guide_env
) -> None:
    app = recorded_app(env_file=guide_env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_editor(pilot)
        await _select(pilot, screen, "RAY_POOL_SIZE")
        await pilot.press("enter")
        await pilot.pause()
        guide_env.write_text(guide_env.read_text().replace("RAY_POOL_SIZE=1", "RAY_POOL_SIZE=7"))
        await pilot.press("ctrl+u", "8", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert "\nRAY_POOL_SIZE=8\n" in guide_env.read_text()


async def test_edits_made_elsewhere_are_picked_up(recorded_app, guide_env) -> None:
    app = recorded_app(env_file=guide_env, env_watch_seconds=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_editor(pilot)
        guide_env.write_text(guide_env.read_text().replace("RAY_POOL_SIZE=1", "RAY_POOL_SIZE=7"))
        table = screen.query_one(DataTable)

        def shown() -> str:
            return str(table.get_row_at(table.get_row_index("RAY_POOL_SIZE"))[2])

        await wait_for(pilot, lambda: shown() == "7", "the editor to show the external edit")
        assert app.backend.workspace.settings.ray_pool_size == 7


async def test_read_only_hides_editing(recorded_app, guide_env) -> None:
    before = guide_env.read_bytes()
    app = recorded_app(env_file=guide_env, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_editor(pilot)
        bound = {active.binding.action for active in screen.active_bindings.values()}
        assert "edit" not in bound and "app.pop_screen" in bound
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EnvEditorScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    assert guide_env.read_bytes() == before


async def test_enter_alone_on_a_secret_keeps_it(recorded_app, guide_env) -> None:
    guide_env.write_text(guide_env.read_text() + "EMBEDDER_API_KEY=sk-live-123\n")
    before = guide_env.read_bytes()
    app = recorded_app(env_file=guide_env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_editor(pilot)
        await _select(pilot, screen, "EMBEDDER_API_KEY")
        assert "sk-live-123" not in str(screen.query_one(DataTable).get_row_at(
            screen.query_one(DataTable).get_row_index("EMBEDDER_API_KEY")))  # fmt: skip
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.query_one(Input).value == ""  # a secret is never shown, even here
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, EnvEditorScreen)
    assert guide_env.read_bytes() == before


def test_a_removed_env_is_noticed_once_not_every_watch(guide_env) -> None:
    backend = Backend(open_workspace(str(guide_env)))
    guide_env.unlink()
    assert backend.env_changed_on_disk()
    backend.reload_workspace()
    assert not backend.env_changed_on_disk()
    assert backend.workspace.settings.ray_pool_size == 1  # OpenRAG's default again
