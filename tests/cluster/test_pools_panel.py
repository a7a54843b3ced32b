"""`+`, `-` and `s` in the panel resize the live pools and write the .env (issue: pools)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openrag_tui.ui.app import make_app
from openrag_tui.ui.widgets.cluster_tables import PoolsTable
from openrag_tui.workspace import open_workspace
from tests.support.cli import run_cli
from tests.support.raycluster import TestCluster
from tests.ui.conftest import settle, wait_for

ENV = """\
# the panel's pools, small enough to share the test cluster
RAY_POOL_SIZE=1
RAY_NUM_GPUS=0.1
MARKER_POOL_SIZE=1
MARKER_NUM_GPUS=0.1
OPENRAG_TUI_NAMESPACE={namespace}
RAY_HEAD_ADDRESS={address}
"""


def cli(*args: str, env_file: Path):
    return run_cli(*args, env_file=env_file)


@pytest.fixture
def env_file(ray_cluster: TestCluster, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / ".env"
    namespace = f"ortui-panel-{uuid.uuid4().hex[:8]}"
    path.write_text(ENV.format(namespace=namespace, address=ray_cluster.gcs_address))
    try:
        yield path
    finally:
        teardown = cli("pools", "teardown", "--yes", env_file=path)
        assert teardown.returncode == 0, teardown.stderr


def alive(env_file: Path, pool: str) -> int:
    status = cli("pools", "status", "--json", env_file=env_file)
    assert status.returncode == 0, status.stderr
    return json.loads(status.stdout)[pool]["alive"]


async def test_plus_minus_and_s_resize_the_live_pool(
    ray_cluster: TestCluster, env_file: Path
) -> None:
    workspace = open_workspace(str(env_file), dashboard=ray_cluster.dashboard_url)
    app = make_app(workspace, keymap_file=env_file.parent / "keymap.toml", env_watch_seconds=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.query_one(PoolsTable).focus()  # the indexer row is selected

        def progress() -> str:
            return str(screen.query_one("#pool-progress").render())

        def settled(size: int) -> bool:
            return f"indexer → {size}:" in progress() and "reached" in progress()

        await pilot.press("plus")
        await wait_for(pilot, lambda: settled(2), "indexer to reach 2", timeout=120)
        assert "RAY_POOL_SIZE=2\n" in env_file.read_text()
        assert alive(env_file, "indexer") == 2

        await pilot.press("minus")
        await wait_for(pilot, lambda: settled(1), "indexer to drain to 1", timeout=120)
        assert "RAY_POOL_SIZE=1\n" in env_file.read_text()

        await pilot.press("s", "ctrl+u", "3", "enter")
        await wait_for(pilot, lambda: settled(3), "indexer to reach 3", timeout=120)
        assert "RAY_POOL_SIZE=3\n" in env_file.read_text()
        assert alive(env_file, "indexer") == 3
        await wait_for(
            pilot,
            lambda: app.backend.workspace.settings.ray_pool_size == 3,
            "the panel to read the new size back from the .env",
        )
    # every other byte of the .env is as written
    lines = env_file.read_text().splitlines()
    assert lines[0] == "# the panel's pools, small enough to share the test cluster"
    assert lines[2:4] == ["RAY_NUM_GPUS=0.1", "MARKER_POOL_SIZE=1"]
