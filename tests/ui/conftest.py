"""Panel fixtures: the app on the recorded cluster, with a frozen clock, at a fixed size."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from openrag_tui.ui.app import OpenRagApp, make_app
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


async def settle(pilot: Pilot) -> None:
    """Let the first poll finish and its message be drawn."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
