"""Starting and stopping from the panel: the log pane, cancel, the stop confirmation, read-only.

`ray` here is a stand-in script (tests/support/fake_ray.py), so these tests see the panel's side
of a run; tests/cluster/test_lifecycle.py starts and stops real clusters.
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Log

from openrag_tui.cluster.lifecycle import Outcome
from openrag_tui.cluster.processes import RayProcess
from openrag_tui.ui.screens.cluster_log import ClusterLogScreen
from openrag_tui.ui.screens.confirm import ConfirmScreen
from openrag_tui.ui.screens.main import MainScreen
from tests.support.raycluster import wait_until
from tests.ui.conftest import settle, wait_for

RAY_PROCESSES = [
    RayProcess(1000 + i, name, f"{name} --flag", "session_2026-12-01_09-30-12_123456_42")
    for i, name in enumerate(["ray::IDLE"] * 30 + ["raylet"] * 5 + ["gcs_server"] * 5)
]
LOCAL_HEAD_ENV = "RAY_HEAD_ADDRESS=127.0.0.1:6390\nRAY_DASHBOARD_PORT=9\nOPENRAG_TUI_LOCAL_GPUS=2\n"


def _env(env_copy: Path, mode: str) -> Path:
    env_copy.write_text(env_copy.read_text() + LOCAL_HEAD_ENV + f"FAKE_RAY={mode}\n")
    return env_copy


async def _start(pilot, until, what: str) -> None:
    """Press U, say yes, and let the app run until `until(screen)` holds on the log screen."""
    await settle(pilot)
    await pilot.press("U")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "the question")
    assert "Start a local Ray head on this machine" in pilot.app.screen.question
    await pilot.press("y")
    await wait_for(
        pilot,
        lambda: isinstance(pilot.app.screen, ClusterLogScreen) and until(pilot.app.screen),
        what,
    )


async def _start_and_finish(pilot) -> None:
    await _start(pilot, lambda screen: screen.run.result is not None, "the start to end")
    await pilot.pause()


async def _start_hanging(pilot) -> None:
    """Press U with the stand-in in "hang" mode, and wait until it runs."""
    await _start(
        pilot,
        lambda screen: any("grandchild" in line for line in screen.query_one(Log).lines),
        "the stand-in to be running",
    )


async def _start_and_finish_in_no_time(pilot) -> None:
    """As `_start_and_finish`, with the run's elapsed time shown as 0 s: the stand-in's real
    time is a second or more on a loaded machine, and a snapshot must not depend on it."""
    await _start_and_finish(pilot)
    screen = pilot.app.screen
    screen.run._began = screen.run._ended
    screen._show_status()
    await pilot.pause()


def test_failed_start_log_80x24(snap_compare, recorded_app, env_copy, fake_ray) -> None:
    app = recorded_app(env_file=_env(env_copy, "fail"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_start_and_finish_in_no_time)


async def test_the_log_streams_rays_lines_and_the_result(recorded_app, env_copy, fake_ray) -> None:
    app = recorded_app(env_file=_env(env_copy, "fail"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _start_and_finish(pilot)
        screen = app.screen
        lines = list(screen.query_one(Log).lines)
        assert lines[0].startswith("$ ray start --head --port 6390")
        assert "--num-gpus 2" in lines[0]
        assert "Error: Failed to setup head node." in lines
        assert not any("\x1b" in line for line in lines)
        assert screen.run.result.outcome is Outcome.FAILED
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_x_cancels_a_running_start(recorded_app, env_copy, fake_ray) -> None:
    app = recorded_app(env_file=_env(env_copy, "hang"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _start_hanging(pilot)
        screen = app.screen
        await pilot.press("escape")  # no way back while it runs
        assert app.screen is screen
        await pilot.press("x")
        await wait_for(pilot, lambda: screen.run.result is not None, "the cancel")
        assert screen.run.result.outcome is Outcome.CANCELLED


async def test_stop_says_what_it_ends_and_n_keeps_everything(
    recorded_app, env_copy, fake_ray
) -> None:
    app = recorded_app(env_file=_env(env_copy, "ok"))
    app.backend.ray_processes = lambda: RAY_PROCESSES  # what this machine would show
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert "`ray stop` ends all 40 Ray processes on this machine" in app.screen.question
        assert "30 ray::IDLE, 5 raylet, 5 gcs_server" in app.screen.question
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    assert not (fake_ray.parent / "calls").exists()  # nothing ran


async def test_read_only_has_no_start_or_stop(recorded_app, env_copy, fake_ray) -> None:
    app = recorded_app(env_file=_env(env_copy, "ok"), read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        actions = {active.binding.action for active in app.screen.active_bindings.values()}
        assert not {"app.start_cluster", "app.stop_cluster"} & actions
        await pilot.press("U", "D")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    assert not (fake_ray.parent / "calls").exists()


async def test_quitting_mid_start_cancels_it(recorded_app, env_copy, fake_ray) -> None:
    app = recorded_app(env_file=_env(env_copy, "hang"))
    async with app.run_test(size=(80, 24)) as pilot:
        await _start_hanging(pilot)
        run = app.screen.run
        await pilot.press("q")
    # the stand-in would hang for 300 s: it ends within seconds only because quitting cancelled it
    wait_until(lambda: run.result is not None, 15, "the run to end after quitting")
    assert run.result.outcome is Outcome.CANCELLED
