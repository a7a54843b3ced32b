"""The logs screen on the recorded cluster, its logs served as Ray's dashboard serves them:
a pool's actors prefixed, stderr apart, a search that finds and counts, a missing log said."""

from __future__ import annotations

from openrag_tui.ui.screens.logs import LogsScreen
from openrag_tui.ui.widgets.cluster_tables import PoolsTable
from tests.support.synthetic import actor_named, recorded
from tests.ui.conftest import settle, wait_for

PAYLOADS = recorded()
HEAD = actor_named(PAYLOADS, "marker-head")["actor_id"]
WORKER = actor_named(PAYLOADS, "marker-worker")["actor_id"]
LOGS = {
    (HEAD, "out"): (
        ":job_id:01000000\n:actor_name:MarkerWorker\n"
        "marker: loading layout, texify and OCR models on cuda:0\n"
        "marker: models loaded in 41.2 s (3.1 GiB)\n"
        "converted /ray_mount/data/manuals/pump.pdf: 12 pages in 8.4 s\n"
        "converted /ray_mount/data/manuals/valve.pdf: 3 pages in 2.1 s\n"
    ),
    (HEAD, "err"): (
        "openrag-tui: convert failed for /ray_mount/data/manuals/locked.pdf: DocumentError: "
        "encrypted PDF: it needs a password\n"
    ),
    (WORKER, "out"): (
        ":job_id:01000000\n:actor_name:MarkerWorker\n"
        "marker: loading layout, texify and OCR models on cuda:0\n"
        "\x1b[31mconverted /ray_mount/data/notes/a.pdf: 1 page in 0.9 s\x1b[0m\n"
    ),
}


async def open_marker_logs(pilot) -> None:
    await settle(pilot)
    pools = pilot.app.screen.query_one(PoolsTable)
    pools.focus()
    pools.move_cursor(row=next(i for i in range(pools.row_count)
                               if str(pools.get_row_at(i)[0]) == "marker"))  # fmt: skip
    await pilot.press("l")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, LogsScreen), "the logs screen")
    await wait_for(pilot, lambda: len(pilot.app.screen.lines) == 7, "the lines")
    await pilot.press("slash", *"encrypted", "enter")
    await pilot.pause()


def test_pool_logs_80x24(snap_compare, recorded_app) -> None:
    app = recorded_app(payloads=PAYLOADS, logs=LOGS)
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_marker_logs)


def test_pool_logs_160x48(snap_compare, recorded_app) -> None:
    app = recorded_app(payloads=PAYLOADS, logs=LOGS)
    assert snap_compare(app, terminal_size=(160, 48), run_before=open_marker_logs)


async def test_lines_are_prefixed_cleaned_and_the_missing_log_is_said(recorded_app) -> None:
    app = recorded_app(payloads=PAYLOADS, logs=LOGS)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_marker_logs(pilot)
        screen = app.screen
        text = [line.plain for line in screen.lines]
        assert "[marker-head] marker: models loaded in 41.2 s (3.1 GiB)" in text
        assert "[marker-worker] converted /ray_mount/data/notes/a.pdf: 1 page in 0.9 s" in text
        assert not any(":job_id:" in line or "\x1b" in line for line in text)
        status = str(screen.query_one("#logs-status").render())
        assert "1 matching 'encrypted'" in status
        assert "marker-worker" in status and "stderr" in status  # its .err is not there


async def test_a_failed_file_opens_the_pools_logs_searched_for_it(recorded_app) -> None:
    app = recorded_app(payloads=PAYLOADS, logs=LOGS)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.push_screen(LogsScreen(["indexer", "marker"], search="locked.pdf"))
        await wait_for(pilot, lambda: bool(app.screen.lines), "the lines")
        await pilot.pause()
        status = str(app.screen.query_one("#logs-status").render())
        assert "1 matching 'locked.pdf'" in status
