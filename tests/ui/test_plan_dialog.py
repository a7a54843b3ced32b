"""`P` on the pools: the planner's dialog on the recorded cluster (declared GPUs, no NVML),
recomputed as figures are typed; enter hands `plan --apply` its figures; read-only shows only.
And the autopilot's line under the pools."""

from __future__ import annotations

from openrag_tui.config import EnvFile, Settings
from openrag_tui.indexing.autopilot_log import AutopilotStatus
from openrag_tui.ui.screens.main import MainScreen, autopilot_line
from openrag_tui.ui.screens.plan_dialog import PlanScreen
from tests.ui.conftest import settle


async def _open(pilot, *keys: str) -> None:
    await settle(pilot)
    await pilot.press("P")
    await pilot.pause()
    await pilot.press(*keys)
    await pilot.pause()


def test_plan_dialog_80x24(snap_compare, recorded_app) -> None:
    async def open_dialog(pilot) -> None:
        await _open(pilot, *"2", "tab", "tab", *"16", "tab", "4")

    assert snap_compare(recorded_app(), terminal_size=(80, 24), run_before=open_dialog)


async def test_the_plan_follows_the_figures_and_enter_applies_them(recorded_app) -> None:
    app = recorded_app()
    applied: list[list[str]] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(pilot)
        screen = app.screen
        assert isinstance(screen, PlanScreen)
        assert "--indexer-gb" in str(screen.query_one("#plan").render())  # nothing measured
        await pilot.press(*"2", "tab", "tab", *"16")
        assert screen.plan is not None and screen.plan.recommended["RAY_NUM_GPUS"] == "0.125"
        main = app.screen_stack[-2]
        assert isinstance(main, MainScreen)
        # the dialog's answer, recorded instead of running the child
        main._run_child = lambda _label, _words, start: applied.append(list(start.args))
        await pilot.press("enter")
        await pilot.pause()
    assert applied == [["--indexer-gb", "2", "--gpu-gb", "16"]]


async def test_read_only_shows_the_plan_and_applies_nothing(recorded_app) -> None:
    app = recorded_app(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open(pilot, *"2", "tab", "tab", *"16", "enter")
        assert isinstance(app.screen, PlanScreen)  # enter did not apply
        assert "shown only (--read-only)" in str(app.screen.query_one("#plan-keys").render())


def test_the_autopilot_line_says_on_off_running_held_and_its_last_step(env_copy) -> None:
    off = Settings.from_envfile(EnvFile.read(env_copy))
    never = AutopilotStatus(False, None, {}, [])
    assert autopilot_line(never, off).plain == ""
    env_copy.write_text(env_copy.read_text() + "OPENRAG_TUI_AUTOPILOT=on\n")
    on = Settings.from_envfile(EnvFile.read(env_copy))
    assert "not running" in autopilot_line(never, on, now=100.0).plain
    step = {"at": 95.0, "pool": "indexer", "from": 1, "to": 3, "reason": "40 file(s) wait"}
    held = {"indexer": {"hold": ["b1"]}}
    line = autopilot_line(AutopilotStatus(True, 98.0, held, [step]), on, now=100.0).plain
    assert line == (
        "autopilot on · indexer held after a hand resize · indexer 1 → 3: 40 file(s) wait"
    )
