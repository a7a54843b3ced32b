"""The batches screen reads a real ledger: progress, rates, ETA, failures; keys run the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from openrag_tui.config import Settings
from openrag_tui.indexing.batch import FileState, config_of
from openrag_tui.indexing.ledger import Ledger
from openrag_tui.ui.screens import main as main_screen
from openrag_tui.ui.screens.batches import BatchesScreen, SubmitScreen
from openrag_tui.ui.screens.confirm import ConfirmScreen
from tests.ui.conftest import FROZEN_NOW, settle, wait_for

NEWEST, OLDER = "20261201-093012-ab12", "20261201-080501-cd34"
CONFIG = config_of(Settings())


@pytest.fixture
def indexed_env(env_copy: Path) -> Path:
    """The scenario's .env with a data volume holding a ledger of two batches."""
    volume = env_copy.parent / "data"
    volume.mkdir()
    env_copy.write_text(env_copy.read_text() + f"DATA_VOLUME={volume}\n")
    ledger = Ledger(volume / ".openrag-tui" / "ledger.sqlite")
    try:
        files = [str(volume / "docs" / name) for name in ("a.pdf", "b.md", "c.txt", "d.pdf")]
        ledger.add_batch(NEWEST, "manuals", {}, False, CONFIG, files, FROZEN_NOW - 60)
        start = FROZEN_NOW - 50
        for index, (state, error) in enumerate(
            [
                (FileState.COMPLETED, None),
                (FileState.COMPLETED, None),
                (FileState.FAILED, "encrypted PDF: it needs a password"),
                (FileState.CONVERTING, None),
            ]
        ):
            done = state.final
            ledger.update(
                NEWEST, index, state=state, error=error, attempts=1, started_at=start,
                finished_at=start + 10 * (index + 1) if done else None, pages=5 if done else None,
            )  # fmt: skip
        ledger.add_batch(OLDER, "notes", {}, False, CONFIG, files[1:3], FROZEN_NOW - 900)
        for index in (0, 1):
            ledger.update(
                OLDER, index, state=FileState.COMPLETED, attempts=1,
                started_at=FROZEN_NOW - 890, finished_at=FROZEN_NOW - 880, pages=1,
            )  # fmt: skip
    finally:
        ledger.close()
    return env_copy


async def _open(pilot) -> BatchesScreen:
    await settle(pilot)
    await pilot.press("b")
    await wait_for(
        pilot,
        lambda: (
            isinstance(pilot.app.screen, BatchesScreen)
            and pilot.app.screen.query_one(DataTable).row_count == 2
            and "encrypted" in str(pilot.app.screen.query_one("#batch-detail").render())
        ),
        "the batches and the newest one's failures to be read",
    )
    await pilot.pause()
    return pilot.app.screen


def test_batches_80x24(snap_compare, recorded_app, indexed_env) -> None:
    app = recorded_app(env_file=indexed_env)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_open)


async def test_rates_eta_and_failures_come_from_the_ledger(recorded_app, indexed_env) -> None:
    app = recorded_app(env_file=indexed_env)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        table = screen.query_one(DataTable)
        newest = [str(cell) for cell in table.get_row_at(0)]
        # 3 of 4 files done in the 50 s since the first start (0.06 file/s: 17 s for the last),
        # 10 pages of the 2 completed ones (0.2 page/s)
        assert newest[:3] == ["…093012-ab12", "manuals", "running"]
        assert newest[3].endswith("3/4") and newest[4:] == ["0.1", "0.2", "17s"]
        assert [str(cell) for cell in table.get_row_at(1)][2] == "done"
        detail = str(screen.query_one("#batch-detail").render())
        assert "converting 1  completed 2  failed 1" in detail
        assert "encrypted PDF: it needs a password" in detail


async def test_keys_ask_before_cancelling_and_submit_needs_both_inputs(
    recorded_app, indexed_env
) -> None:
    app = recorded_app(env_file=indexed_env)
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and NEWEST in app.screen.question
        await pilot.press("n")
        await pilot.press("n")  # new batch
        await pilot.pause()
        assert isinstance(app.screen, SubmitScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BatchesScreen)


async def test_read_only_can_look_but_not_change(recorded_app, indexed_env) -> None:
    app = recorded_app(env_file=indexed_env, read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open(pilot)
        actions = {active.binding.action for active in screen.active_bindings.values()}
        assert not {"new_batch", "retry_batch", "cancel_batch"} & actions


async def test_the_screen_reads_the_ledger_on_its_clock_not_in_a_loop(
    recorded_app, indexed_env, monkeypatch
) -> None:
    app = recorded_app(env_file=indexed_env)
    reads: list[float] = []
    real = app.backend.list_batches

    def counted():
        reads.append(1)
        return real()

    monkeypatch.setattr(app.backend, "list_batches", counted)
    # the main screen samples the ledger too (indexing rates), on its own 5 s clock: not here
    monkeypatch.setattr(main_screen, "VECTOR_STORE_SECONDS", 3600.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await _open(pilot)
        await app.workers.wait_for_complete()  # its first sample may still be out
        settled = len(reads)
        await pilot.pause(1.0)  # less than the 2 s refresh: no read is due
        assert len(reads) == settled


async def test_no_batches_yet_says_what_to_type_and_the_arrows_do_not_crash(
    recorded_app, env_copy
) -> None:
    volume = env_copy.parent / "data"
    volume.mkdir()
    env_copy.write_text(env_copy.read_text() + f"DATA_VOLUME={volume}\n")
    app = recorded_app(env_file=env_copy)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await wait_for(
            pilot,
            lambda: "No batches yet" in str(app.screen.query_one("#batch-detail").render()),
            "the empty ledger to be read",
        )
        assert "type samples" in str(app.screen.query_one("#batch-detail").render())
        await pilot.press("up", "down", "home", "end", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, BatchesScreen)


async def test_two_batches_of_one_day_are_told_apart(recorded_app, indexed_env) -> None:
    app = recorded_app(env_file=indexed_env)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot)
        table = screen.query_one(DataTable)
        shown = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert shown == ["…093012-ab12", "…080501-cd34"]  # the ends differ: what tells them apart
