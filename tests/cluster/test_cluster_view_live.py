"""The cluster view against the real two-node cluster: `status --json` exactly, and the panel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from openrag_tui.ui.app import make_app
from openrag_tui.ui.widgets.cluster_tables import NodesTable, PoolsTable
from openrag_tui.workspace import open_workspace
from tests.support import scenario
from tests.support.raycluster import TestCluster
from tests.ui.conftest import settle

ENV = """\
# pools as an operator might set them
RAY_POOL_SIZE=4
RAY_NUM_GPUS=0.5
MARKER_POOL_SIZE=3 # one per node, plus one
MARKER_NUM_GPUS=1
"""


def status(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openrag_tui", "status", "--env", str(env_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(
        ENV + f"DATA_VOLUME={tmp_path}\nMODEL_WEIGHTS_VOLUME={tmp_path}\nCONFIG_VOLUME={tmp_path}\n"
    )
    return path


def test_status_json_reports_the_scenario_exactly(scenario_cluster: TestCluster, env_file) -> None:
    result = status("--json", "--dashboard", scenario_cluster.dashboard_url, env_file=env_file)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    assert report["dashboard"] == scenario_cluster.dashboard_url
    assert report["ray_version"] == "2.60.0"
    head, worker = sorted(report["nodes"], key=lambda node: not node["is_head"])
    assert (head["is_head"], head["state"]) == (True, "ALIVE")
    assert (head["gpus_total"], head["gpus_reserved"], head["gpus_free"]) == (4.0, 3.0, 1.0)
    assert head["reserved_by"] == {"indexer": 1.0, "marker": 1.0, "other": 1.0}
    assert (worker["is_head"], worker["state"]) == (False, "ALIVE")
    assert (worker["gpus_total"], worker["gpus_reserved"], worker["gpus_free"]) == (2.0, 1.5, 0.5)
    assert worker["reserved_by"] == {"indexer": 0.5, "marker": 1.0, "other": 0.0}
    assert head["gpu_devices"] == worker["gpu_devices"] == []  # declared GPUs: no NVML data

    pools = {pool["name"]: pool for pool in report["pools"]}
    indexer, marker = pools["indexer"], pools["marker"]
    assert (indexer["target"], indexer["alive"], indexer["pending"]) == (4, 3, 0)
    assert (indexer["gpus_per_actor"], indexer["gpus_reserved"]) == (0.5, 1.5)
    assert indexer["fits_more"] == 3  # one whole free GPU on the head (2), half a GPU on the worker
    assert (marker["target"], marker["alive"], marker["pending"]) == (3, 2, 1)
    assert (marker["gpus_per_actor"], marker["gpus_reserved"]) == (1.0, 2.0)
    assert marker["fits_more"] == 1  # only the head has a whole GPU free

    pending = {item["class_name"]: item for item in report["pending"]}
    assert set(pending) == {"MarkerWorker", "Worker"}
    assert pending["MarkerWorker"]["pool"] == "marker"
    assert pending["MarkerWorker"]["reason"] == "waiting"
    assert pending["MarkerWorker"]["required"] == {"GPU": 2.0}
    assert pending["Worker"]["pool"] is None
    assert pending["Worker"]["reason"] == "infeasible"
    assert pending["Worker"]["required"] == {"GPU": 8.0}
    assert "8" in pending["Worker"]["detail"]
    assert [death for death in report["deaths"] if death["namespace"] == scenario.NAMESPACE] == []
    # The cluster is shared: pool actors that tests run before this one killed are listed DEAD,
    # and said in one sentence. Nothing else is worth a warning.
    others_dead = bool(report["deaths"])
    assert [line for line in report["warnings"] if not (others_dead and " dead: " in line)] == []


def test_status_human_output_names_both_nodes(scenario_cluster: TestCluster, env_file) -> None:
    result = status("--dashboard", scenario_cluster.dashboard_url, env_file=env_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("ALIVE") == 2
    assert "infeasible" in result.stdout and "waiting" in result.stdout


async def test_panel_shows_the_live_clusters_gpus(
    scenario_cluster: TestCluster, tmp_path: Path
) -> None:
    env = tmp_path / ".env"
    env.write_text("RAY_POOL_SIZE=4\nRAY_NUM_GPUS=0.5\nMARKER_POOL_SIZE=3\nMARKER_NUM_GPUS=1\n")
    workspace = open_workspace(str(env), dashboard=scenario_cluster.dashboard_url)
    app = make_app(workspace, keymap_file=tmp_path / "keymap.toml", env_watch_seconds=None)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.failures == 0, screen.last_error
        nodes = screen.query_one(NodesTable)
        cells = [[str(cell) for cell in nodes.get_row_at(i)] for i in range(nodes.row_count)]
        figures = {(row[1], row[4], row[5]) for row in cells}  # head mark, reserved, free
        assert figures == {("head", "3/4", "1"), ("", "1.5/2", "0.5")}
        pools = screen.query_one(PoolsTable)
        rows = {key.value: pools.get_row(key) for key in pools.rows}
        # the scenario's actors have OpenRAG's classes: none of ours, theirs on their own line
        assert [str(cell) for cell in rows["indexer"][1:4]] == ["4", "0", "0"]
        assert [str(cell) for cell in rows["indexer:openrag"][:4]] == ["└ openrag", "–", "3", "0"]
        assert [str(cell) for cell in rows["marker"][1:4]] == ["3", "0", "0"]
        assert [str(cell) for cell in rows["marker:openrag"][2:4]] == ["2", "1"]
        status = str(screen.query_one("#status-bar").render())
        assert "Ray 2.60.0" in status and "2/2 nodes" in status
