"""Panel fixtures: the app on the recorded cluster, with a frozen clock, at a fixed size."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable

from openrag_tui.ui.app import OpenRagApp, make_app
from openrag_tui.ui.screens.main import MainScreen
from openrag_tui.workspace import open_workspace
from tests.support.recorded import recorded_factory

DATA = Path(__file__).resolve().parents[1] / "data"
FROZEN_NOW = 1_795_771_210.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ui/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.ui)


@pytest.fixture
def fixed_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private home folder: paths in it show as `~/...`, the same in every run."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def env_copy(fixed_dir: Path) -> Path:
    """A private copy of the scenario's .env (tests may edit it)."""
    path = fixed_dir / ".env"
    shutil.copyfile(DATA / "scenario.env", path)
    return path


@pytest.fixture
def recorded_app(env_copy: Path) -> Callable[..., OpenRagApp]:
    """Build the panel on the recorded two-node cluster."""

    def build(
        read_only: bool = False,
        keymap_file: Path | None = None,
        env_watch_seconds: float | None = None,
        env_file: Path | None = None,
        **dashboard: Any,
    ) -> OpenRagApp:
        return make_app(
            open_workspace(str(env_file or env_copy)),
            read_only=read_only,
            client_factory=recorded_factory(**dashboard),
            clock=lambda: FROZEN_NOW,
            keymap_file=keymap_file or env_copy.parent / "keymap.toml",
            env_watch_seconds=env_watch_seconds,
        )

    return build


@pytest.fixture
def unreachable_app(env_copy: Path) -> Callable[[], OpenRagApp]:
    """The panel pointed at a port where nothing listens."""

    def build() -> OpenRagApp:
        workspace = open_workspace(str(env_copy), dashboard="http://127.0.0.1:9")
        return make_app(
            workspace, clock=lambda: FROZEN_NOW, keymap_file=env_copy.parent / "keymap.toml"
        )

    return build


async def settle(pilot: Pilot, timeout: float = 30.0) -> None:
    """Wait until the main screen has a poll result (a view or a failure), fully laid out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if _settled(pilot.app.screen):
            return
        if loop.time() > deadline:
            raise TimeoutError("the main screen never settled on its first poll result")


async def wait_for(pilot: Pilot, condition: Callable[[], bool], what: str, timeout=10.0) -> None:
    """Let the app run until `condition()` holds; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def _settled(screen: Screen) -> bool:
    if isinstance(screen, MainScreen) and not (screen.view or screen.failures):
        return False
    # DataTable sizes its columns on the next idle after rows change (a private flag, read-only)
    return not any(table._require_update_dimensions for table in screen.query(DataTable))
