"""The `status --json` object: its shape is a contract with scripts."""

from __future__ import annotations

import json
from typing import Any

from openrag_tui.cli.common import json_text
from openrag_tui.cluster.allocation import build_view
from openrag_tui.cluster.state import parse
from openrag_tui.cluster.summary import view_as_dict, view_summary
from tests.support.synthetic import HEAD_ID, nvml_gpus, pool_spec_of, recorded

URL = "http://127.0.0.1:8265"
POOLS = (
    pool_spec_of("indexer", 4, 0.5, 0.0, {"max_tasks_per_worker": 5}),
    pool_spec_of("marker", 3, 1.0, 0.0, {"max_processes": 2}),
)
NODE_KEYS = {
    "node_id",
    "ip",
    "hostname",
    "is_head",
    "state",
    "gpus_total",
    "gpus_reserved",
    "gpus_free",
    "reserved_by",
    "gpu_devices",
}
POOL_KEYS = {"name", "target", "alive", "pending", "gpus_per_actor", "gpus_reserved", "fits_more"}
PENDING_KEYS = {"actor_id", "class_name", "pool", "required", "reason", "detail"}


def summary_of(payloads: dict[str, Any], pools: tuple = POOLS) -> dict:
    view = build_view(parse(payloads, 1000.0), pools, now=1000.0, stale_after=6.0)
    return json.loads(json.dumps(view_as_dict(view, URL), allow_nan=False))  # JSON-ready


def test_top_level_shape() -> None:
    summary = summary_of(recorded())
    assert {"dashboard", "ray_version", "nodes", "pools", "pending", "warnings"} <= set(summary)
    assert (summary["dashboard"], summary["ray_version"]) == (URL, "2.60.0")
    assert (summary["actors_total"], summary["actors_truncated"]) == (8, False)
    assert (summary["fetched_at"], summary["warnings"]) == (1000.0, [])


def test_nodes() -> None:
    head, worker = summary_of(recorded())["nodes"]
    assert set(head) >= NODE_KEYS
    assert head["node_id"] == HEAD_ID and head["is_head"] and not worker["is_head"]
    assert (head["gpus_total"], head["gpus_reserved"], head["gpus_free"]) == (4.0, 3.0, 1.0)
    assert head["reserved_by"] == {"indexer": 1.0, "marker": 1.0, "other": 1.0}
    assert (head["placement_groups_gpus"], head["other_by_class"]) == (1.0, {})
    assert (head["gpus_reserved_reported"], head["gpu_slots_estimate"]) == (3.0, [1, 1, 1, 0])
    assert (worker["gpus_reserved"], worker["gpus_free"]) == (1.5, 0.5)
    assert worker["reserved_by"] == {"indexer": 0.5, "marker": 1.0, "other": 0.0}
    assert head["gpu_devices"] == []


def test_pools() -> None:
    indexer, marker = summary_of(recorded())["pools"]
    assert set(indexer) >= POOL_KEYS
    assert indexer == {
        "name": "indexer",
        "target": 4,
        "alive": 3,
        "pending": 0,
        "restarting": 0,
        "dead": 0,
        "gpus_per_actor": 0.5,
        "gpus_reserved": 1.5,
        "gpus_target": 2.0,
        "fits_more": 3,
        "fits_on_idle": 12,
        "concurrency": {"max_tasks_per_worker": 5},
        "owners": {  # the recorded actors are OpenRAG's own classes
            "openrag-tui": {"alive": 0, "pending": 0, "restarting": 0, "dead": 0},
            "openrag": {"alive": 3, "pending": 0, "restarting": 0, "dead": 0},
        },
        "invalid": {},
    }
    assert (marker["alive"], marker["pending"], marker["fits_more"]) == (2, 1, 1)


def test_pending() -> None:
    too_big, waiting = summary_of(recorded())["pending"]
    assert set(too_big) >= PENDING_KEYS
    assert (too_big["class_name"], too_big["pool"], too_big["reason"]) == (
        "Worker",
        None,
        "infeasible",
    )
    assert too_big["required"] == {"GPU": 8.0}
    assert "{'GPU': 8.0}" in too_big["autoscaler_message"]
    assert (waiting["pool"], waiting["reason"], waiting["required"]) == (
        "marker",
        "waiting",
        {"GPU": 2.0},
    )
    assert waiting["detail"] == "needs 2 GPU; most free on one node is 1 whole GPU (192.0.2.2 head)"


def test_gpu_amounts_round_to_four_decimals() -> None:
    third = (pool_spec_of("indexer", 3, 1 / 3, 0.0, {}),)
    (pool,) = summary_of(recorded(), third)["pools"]
    assert (pool["gpus_per_actor"], pool["gpus_target"]) == (0.3333, 0.9999)  # Ray's fixed point


def test_physical_gpus_are_listed() -> None:
    payloads = recorded()
    for entry in payloads["nodes_summary"]["data"]["summary"]:
        if entry["raylet"]["nodeId"] == HEAD_ID:
            entry["gpus"] = nvml_gpus(2, used_mib=10240.0, utilization=37.0)
    head = summary_of(payloads)["nodes"][0]
    first = head["gpu_devices"][0]
    assert {"index", "name", "memory_used_mib", "memory_total_mib", "utilization"} <= set(first)
    assert (first["index"], first["name"]) == (0, "NVIDIA A100-SXM4-40GB")
    assert (first["memory_used_mib"], first["memory_total_mib"], first["utilization"]) == (
        10240.0,
        40960.0,
        37.0,
    )
    assert len(head["gpu_devices"]) == 2


def test_the_text_status_json_writes_reads_as_the_plain_dict() -> None:
    """`status --json` writes `view_summary` (rows as structs); `view_as_dict` is plain values."""
    payloads = recorded()
    for entry in payloads["nodes_summary"]["data"]["summary"]:
        if entry["raylet"]["nodeId"] == HEAD_ID:
            entry["gpus"] = nvml_gpus(2, used_mib=10240.0, utilization=37.0)
    view = build_view(parse(payloads, 1000.0), POOLS, now=1000.0, stale_after=6.0)
    plain = view_as_dict(view, URL)
    assert json.loads(json_text(view_summary(view, URL))) == plain
    assert json.loads(json.dumps(plain, allow_nan=False)) == plain  # lists and dicts only
    assert plain["nodes"][0]["gpu_devices"][1]["index"] == 1
