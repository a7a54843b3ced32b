"""The history the panel keeps, where a person looks: the nodes table's recent column, node
detail's charts and per-actor GPU memory, the pools table's memory per actor, and the batches
screen's files/s and pages/s. The history is filled with known samples before the first poll."""

from __future__ import annotations

import math

from openrag_tui.cluster.allocation import build_view
from openrag_tui.cluster.state import parse
from openrag_tui.config.pools import POOLS
from openrag_tui.ui.app import OpenRagApp
from openrag_tui.ui.widgets.cluster_tables import NodesTable, PoolsTable
from tests.support import synthetic
from tests.ui.conftest import FROZEN_NOW, settle

SAMPLES = 40  # refreshes every 2 s before the first poll


def gpus_at(step: int) -> dict:
    """The recorded cluster with NVML figures that rise and fall with `step`."""
    payloads = synthetic.recorded()
    wave = (math.sin(step / 4) + 1) / 2
    for row in payloads["nodes_summary"]["data"]["summary"]:
        count = 4 if row["raylet"]["isHeadNode"] else 2
        row["gpus"] = synthetic.nvml_gpus(
            count, used_mib=4096.0 + 12288.0 * wave, utilization=round(100 * wave)
        )
    return payloads


def with_history(app: OpenRagApp) -> OpenRagApp:
    specs = [synthetic.pool_spec_of(name, 2, 0.5) for name in POOLS]
    history = app.backend.history
    files = pages = 0
    for step in range(SAMPLES):
        files += round(6 * (math.sin(step / 3) + 1))  # a rate that rises and falls
        pages += 9 * round(6 * (math.cos(step / 5) + 1))
        when = FROZEN_NOW - 2.0 * (SAMPLES - step)
        view = build_view(parse(gpus_at(step), when), specs, now=when, stale_after=60.0)
        history.record_cluster(view, view.gpu_memory, when)
        history.record_indexing(files, pages, when)
    return app


def build(recorded_app) -> OpenRagApp:
    return with_history(recorded_app(payloads=gpus_at(SAMPLES)))


def test_node_detail_history_80x24(snap_compare, recorded_app) -> None:
    async def open_head(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")

    assert snap_compare(build(recorded_app), terminal_size=(80, 24), run_before=open_head)


def test_node_detail_history_160x48(snap_compare, recorded_app) -> None:
    async def open_head(pilot) -> None:
        await settle(pilot)
        await pilot.press("enter")

    assert snap_compare(build(recorded_app), terminal_size=(160, 48), run_before=open_head)


def test_history_in_the_tables_160x48(snap_compare, recorded_app) -> None:
    assert snap_compare(build(recorded_app), terminal_size=(160, 48), run_before=settle)


def test_batches_rates_80x24(snap_compare, recorded_app) -> None:
    async def open_batches(pilot) -> None:
        await settle(pilot)
        await pilot.press("b")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(build(recorded_app), terminal_size=(80, 24), run_before=open_batches)


async def test_the_tables_show_the_recent_use_and_the_memory_per_actor(recorded_app) -> None:
    app = build(recorded_app)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        nodes = app.screen.query_one(NodesTable)
        recent = str(nodes.get_row_at(0)[-1])
        assert len(set(recent)) > 3  # the GPU use rose and fell: several bar heights
        pools = app.screen.query_one(PoolsTable)
        rows = [pools.get_row_at(i) for i in range(pools.row_count)]
        assert [str(row[0]) for row in rows][:2] == ["indexer", "└ openrag"]
        # OpenRAG's indexer idx-head-1 (pid 4655) holds GPU0's process: 4-16 GiB over the
        # history, median and max, against 0.5 of a 40 GiB card
        memory = str(rows[1][-1])
        assert memory.endswith(" of 20G") and memory.split("/")[1].startswith("16")


async def test_at_80_columns_the_memory_column_gives_way_to_the_figures(recorded_app) -> None:
    app = build(recorded_app)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        pools = app.screen.query_one(PoolsTable)
        assert PoolsTable.MEMORY not in pools.columns
        width = sum(column.get_render_width(pools) for column in pools.columns.values())
        assert width <= 80
