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
def env_copy(tmp_path: Path) -> Path:
    """A private copy of the scenario's .env (tests may edit it)."""
    path = tmp_path / ".env"
    shutil.copyfile(DATA / "scenario.env", path)
    return path


@pytest.fixture
def recorded_app(env_copy: Path) -> Callable[..., OpenRagApp]:
    """Build the panel on the recorded two-node cluster."""

    def build(read_only: bool = False, **dashboard: Any) -> OpenRagApp:
        return make_app(
            open_workspace(str(env_copy)),
            read_only=read_only,
            client_factory=recorded_factory(**dashboard),
            clock=lambda: FROZEN_NOW,
        )

    return build


@pytest.fixture
def unreachable_app(env_copy: Path) -> Callable[[], OpenRagApp]:
    """The panel pointed at a port where nothing listens."""

    def build() -> OpenRagApp:
        workspace = open_workspace(str(env_copy), dashboard="http://127.0.0.1:9")
        return make_app(workspace, clock=lambda: FROZEN_NOW)

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


def _settled(screen: Screen) -> bool:
    if isinstance(screen, MainScreen) and not (screen.view or screen.failures):
        return False
    # DataTable sizes its columns on the next idle after rows change (a private flag, read-only)
    return not any(table._require_update_dimensions for table in screen.query(DataTable))
