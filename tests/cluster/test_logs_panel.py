"""The panel's logs on the real two-node cluster: `l` on a pool row shows its actors' lines,
each prefixed; `f` follows and sees a line printed after it opened; `/` finds a line."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from openrag_tui.ui.app import make_app
from openrag_tui.ui.screens.logs import LogsScreen
from openrag_tui.ui.widgets.cluster_tables import PoolsTable
from openrag_tui.workspace import open_workspace
from tests.support.raycluster import TestCluster
from tests.ui.conftest import settle, wait_for

RUN = uuid.uuid4().hex[:8]
NAME = f"ortui-panel-log-{RUN}"


@ray.remote(num_cpus=0)
class TuiMarkerWorker:
    """Prints what it is told; its class name puts it in the marker pool."""

    def say(self, text: str, err: bool = False) -> int:
        print(text, file=sys.stderr if err else sys.stdout, flush=True)
        return os.getpid()

    def leave(self) -> None:
        ray.actor.exit_actor()


@pytest.fixture(scope="module")
def printer(ray_cluster: TestCluster) -> Iterator[ray.actor.ActorHandle]:
    ray.init(address=ray_cluster.gcs_address, namespace=f"ortui-plog-{RUN}",
             log_to_driver=False, logging_level="ERROR")  # fmt: skip
    actor = TuiMarkerWorker.options(name=NAME, lifetime="detached").remote()
    try:
        ray.get(actor.say.remote(f"first line of {RUN}"), timeout=60)
        ray.get(actor.say.remote(f"an error line of {RUN}", True), timeout=60)
        yield actor
    finally:  # an exit on purpose: a kill would be a death every later status warns about
        with contextlib.suppress(ray.exceptions.RayActorError):
            ray.get(actor.leave.remote(), timeout=30)
        ray.shutdown()


def shown(screen: LogsScreen) -> str:
    return "\n".join(line.plain for line in screen.lines)


async def test_l_on_a_pool_shows_its_logs_and_f_follows_them(
    ray_cluster: TestCluster, printer, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# the panel's logs: only the dashboard is needed\n")
    workspace = open_workspace(str(env_file), dashboard=ray_cluster.dashboard_url)
    app = make_app(workspace, keymap_file=tmp_path / "keymap.toml", env_watch_seconds=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        pools = app.screen.query_one(PoolsTable)
        pools.focus()
        marker = next(i for i in range(pools.row_count) if str(pools.get_row_at(i)[0]) == "marker")
        pools.move_cursor(row=marker)
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogsScreen), "the logs screen")
        screen = app.screen
        await wait_for(pilot, lambda: f"first line of {RUN}" in shown(screen), "the tail", 60)
        assert f"[{NAME}] first line of {RUN}" in shown(screen)  # a pool's lines say whose
        assert f"an error line of {RUN}" in shown(screen)

        await pilot.press("f")
        await wait_for(pilot, lambda: f"first line of {RUN}" in shown(screen), "the follow", 60)
        later = f"written after the follow opened {RUN}"
        printer.say.remote(later)
        await wait_for(pilot, lambda: later in shown(screen), "the new line", 60)

        await pilot.press("slash", *"error line", "enter")
        await pilot.pause()
        status = str(screen.query_one("#logs-status").render())
        assert "1 matching 'error line'" in status
        await pilot.press("f")  # follow off: its streams end
        for _ in range(2):  # Ray frees a follow's dashboard slot when a write finds it gone
            ray.get(printer.say.remote("after the follow"), timeout=30)
            ray.get(printer.say.remote("after the follow", True), timeout=30)
