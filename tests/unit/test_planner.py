"""The planner: the deployment guide's arithmetic per GPU, markers first, shares that make Ray
place exactly what fits in memory (recorded payloads, with NVML figures where a test needs)."""

from __future__ import annotations

from typing import Any

import pytest

from openrag_tui.cluster.allocation import build_view
from openrag_tui.cluster.planner import Given, PlanRefused, measured_memory, plan_pools
from openrag_tui.cluster.rooms import UNIT, pack, units
from openrag_tui.cluster.state import ClusterState, GpuDevice, GpuProcess, Node, parse
from tests.support.synthetic import HEAD_ID, nvml_gpus, pool_spec_of, recorded


def cluster(*gpus_per_node: float, devices: tuple[GpuDevice, ...] = ()) -> ClusterState:
    nodes = tuple(
        Node(f"node{i}", f"10.0.0.{i + 1}", f"host{i}", i == 0, "ALIVE",
             {"GPU": gpus, "CPU": 8.0}, devices if i == 0 else ())
        for i, gpus in enumerate(gpus_per_node)
    )  # fmt: skip
    return ClusterState("2.60.0", nodes, (), (), (), (), 0, False, 0.0)


def specs(markers: int = 0, marker_gpus: float = 0.01) -> dict[str, Any]:
    return {
        "indexer": pool_spec_of("indexer", 1, 0.1),
        "marker": pool_spec_of("marker", markers, marker_gpus),
    }


def plan(state: ClusterState, markers: int = 0, measured: dict | None = None, **given: float):
    return plan_pools(state, specs(markers), Given(**given), measured or {})


def test_the_guides_example_four_indexers_per_4_gb_gpu_on_two_nodes() -> None:
    result = plan(cluster(1, 1), gpu_gb=4, indexer_gb=1)
    assert result.recommended["RAY_NUM_GPUS"] == "0.25"
    assert result.recommended["RAY_POOL_SIZE"] == "8"
    assert (result.fit["indexer"].run, result.fit["indexer"].wait) == (8, 0)
    assert result.reasons[0].startswith("RAY_NUM_GPUS=0.25: an indexer holds 1.0 GB (given)")


def test_a_reserve_makes_three_fit_and_the_share_lets_ray_place_no_fourth() -> None:
    result = plan(cluster(2), gpu_gb=4, indexer_gb=1, reserve_gb=1)
    assert result.recommended["RAY_NUM_GPUS"] == "0.3333"
    assert result.recommended["RAY_POOL_SIZE"] == "6"
    share = units(float(result.recommended["RAY_NUM_GPUS"]))
    assert pack([UNIT], [share] * 3) == [3 * share]
    assert 4 * share > UNIT  # a fourth does not fit in Ray's arithmetic
    assert [gpu.indexers for gpu in result.gpus] == [3, 3]


def test_markers_are_placed_first_and_their_share_leaves_exactly_the_indexers_beside() -> None:
    result = plan(cluster(1, 1), markers=1, gpu_gb=4, indexer_gb=1, marker_gb=2)
    assert [(gpu.markers, gpu.indexers) for gpu in result.gpus] == [(1, 2), (0, 4)]
    assert result.recommended["MARKER_NUM_GPUS"] == "0.5"
    assert result.recommended["RAY_POOL_SIZE"] == "6"
    assert result.fit["marker"].run == 1 and result.fit["indexer"].run == 6


def test_a_marker_of_unknown_memory_is_left_out_and_said() -> None:
    result = plan(cluster(1, 1), markers=1, gpu_gb=4, indexer_gb=1)
    assert result.recommended["RAY_POOL_SIZE"] == "8"
    assert result.recommended["MARKER_NUM_GPUS"] == "0.01"
    assert any("marker's GPU memory is unknown" in line for line in result.reasons)
    assert result.fit["indexer"].wait == 1  # its 0.01 share still takes a place: said, not hidden


def test_nvml_gives_memory_and_what_processes_outside_the_pools_hold() -> None:
    vllm = GpuDevice(0, "A100", 30000.0, 40960.0, 50.0, processes=(GpuProcess(999, 30720.0),))
    idle = GpuDevice(1, "A100", 0.0, 40960.0, 0.0)
    result = plan(cluster(2, devices=(vllm, idle)), indexer_gb=4)
    assert [gpu.indexers for gpu in result.gpus] == [2, 2]  # 10 GB left beside vLLM: 2 of 4 GB
    assert result.recommended["RAY_NUM_GPUS"] == "0.5"
    assert any("room for 10 but one share" in note for note in result.notes)


def test_missing_figures_are_one_sentence_each() -> None:
    with pytest.raises(PlanRefused, match="--indexer-gb"):
        plan(cluster(1), gpu_gb=4)
    with pytest.raises(PlanRefused, match="--gpu-gb"):
        plan(cluster(1), indexer_gb=1)
    with pytest.raises(PlanRefused, match="no GPU has room"):
        plan(cluster(1), gpu_gb=4, indexer_gb=1, reserve_gb=3.5)
    with pytest.raises(PlanRefused, match="no alive node declares a GPU"):
        plan(cluster(0), gpu_gb=4, indexer_gb=1)
    with pytest.raises(PlanRefused, match="--reserve-gb"):
        plan(cluster(1), gpu_gb=4, indexer_gb=1, reserve_gb=-1)


def test_the_measured_memory_is_the_median_of_the_pools_actors_over_the_history() -> None:
    payloads = recorded()
    summary = payloads["nodes_summary"]["data"]["summary"]
    head = next(entry for entry in summary if entry["raylet"]["nodeId"] == HEAD_ID)
    head["gpus"] = nvml_gpus(2)
    head["gpus"][0]["processesPids"] = [
        {"pid": 4654, "gpuMemoryUsage": 1000.0},
        {"pid": 4655, "gpuMemoryUsage": 3000.0},
    ]
    found = build_view(parse(payloads, 0.0), (), now=0.0, stale_after=60.0).gpu_memory
    assert measured_memory(found, "indexer") == 2000.0
    some = next(entry.actor_id for entry in found.values() if entry.memory_mib == 1000.0)
    assert measured_memory(found, "indexer", {some: [1000.0, 1000.0, 1000.0]}) == 1000.0
    assert measured_memory(found, "marker") is None
