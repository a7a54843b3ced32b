"""Dashboard payloads built in code, in the shape Ray 2.60 returns them.

Two sources: `recorded()` copies the payloads recorded from the live two-node scenario so a test
can change one thing (a DEAD node, a truncated list, physical GPUs); `generate_payloads()` makes a
cluster of any size for benchmarks, with Ray's own per-node figures (`usageByNode`) computed
alongside so a test can check the view against them.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded"
HEAD_ID = "53dec319a8639bf1749328d7f5ad2912f67b6cc2e0f5e9f2f5b42dd4"
WORKER_ID = "03cb512504343138d4d0a436bb14716775b2c54c60956ce9054b09b5"
PG_ID = "010e1b5f0b005e9d5f52f9da3cf201000000"

GPUS_PER_NODE = 8
CPUS_PER_NODE = 64
GIB = 2**30
_ACTOR_MIX = (  # (class name, GPU) cycled over each node's actors
    ("IndexerWorkerActor", 0.5),
    ("MarkerWorker", 1.0),
    ("IndexerWorkerActor", 0.25),
    ("Worker", 0.1),
    ("DocSerializer", 0.25),
    ("TaskStateManager", 0.0),
)


@cache
def _recorded_text() -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted(RECORDED.glob("*.json"))}


def recorded() -> dict[str, Any]:
    """A fresh, mutable copy of every recorded payload, by endpoint name."""
    return {name: json.loads(text) for name, text in _recorded_text().items()}


def rows(payloads: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The mutable row list of a state-API listing (nodes_detail, actors_detail, ...)."""
    return payloads[name]["data"]["result"]["result"]


def actor_named(payloads: dict[str, Any], name: str) -> dict[str, Any]:
    return next(row for row in rows(payloads, "actors_detail") if row["name"] == name)


def node_row(payloads: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(row for row in rows(payloads, "nodes_detail") if row["node_id"] == node_id)


def set_rows(payloads: dict[str, Any], name: str, new_rows: list[dict[str, Any]]) -> None:
    """Replace a listing's rows and keep its counters consistent."""
    result = payloads[name]["data"]["result"]
    result["result"] = new_rows
    result["total"] = result["num_after_truncation"] = result["num_filtered"] = len(new_rows)


def actor(
    name: str,
    class_name: str,
    required: dict[str, float],
    *,
    state: str = "ALIVE",
    node_id: str | None = None,
    placement_group_id: str | None = None,
    namespace: str = "scenario",
) -> dict[str, Any]:
    """An actor row as /api/v0/actors?detail=1 returns it."""
    placed = state == "ALIVE" and node_id is not None
    return {
        "actor_id": _hex("actor", name, length=24) + "01000000",
        "call_site": None,
        "class_name": class_name,
        "death_cause": None,
        "fallback_strategy": None,
        "is_detached": True,
        "job_id": "01000000",
        "label_selector": {},
        "name": name,
        "node_id": node_id,
        "num_restarts": "0",
        "num_restarts_due_to_lineage_reconstruction": "0",
        "num_restarts_due_to_node_preemption": "0",
        "pid": 5000 + int(_hex("pid", name, length=3), 16) if placed else 0,
        "placement_group_id": placement_group_id,
        "ray_namespace": namespace,
        "repr_name": "",
        "required_resources": required,
        "serialized_runtime_env": "{}",
        "state": state,
    }


def nvml_gpus(count: int, used_mib: float = 10240.0, utilization: float = 37.0) -> list[dict]:
    """A `gpus` list as /nodes?view=summary reports it from NVML (A100 40 GB cards)."""
    return [
        {
            "index": index,
            "name": "NVIDIA A100-SXM4-40GB",
            "uuid": f"GPU-{_hex('gpu', str(index), length=8)}-1f2e-4d3c-8b7a-{index:012x}",
            "utilizationGpu": utilization,
            "memoryUsed": used_mib,
            "memoryTotal": 40960.0,
            "processesPids": [{"pid": 4655 + index, "gpuMemoryUsage": used_mib}],
        }
        for index in range(count)
    ]


def generate_payloads(n_nodes: int, actors_per_node: int) -> dict[str, Any]:
    """A realistic cluster of `n_nodes` 8-GPU nodes with `actors_per_node` actors each.

    Each node holds a cycle of pool and other actors packed onto its GPUs (an actor that would
    not fit asks for no GPU), and every tenth node a one-GPU placement group with an actor inside.
    Two actors pend: one infeasible (16 GPU), one waiting (a whole idle node's 8 GPU).
    `cluster_status.usageByNode` holds the GPU and CPU each node reserves, as Ray reports it.
    """
    node_ids = [_hex("node", str(i), length=56) for i in range(n_nodes)]
    actor_rows: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    usage: dict[str, dict[str, list[float]]] = {}
    for i, node_id in enumerate(node_ids):
        slots = [1.0] * GPUS_PER_NODE
        cpus = float(CPUS_PER_NODE)
        if i % 10 == 0:
            pg_id = _hex("pg", str(i), length=28) + "01000000"
            groups.append(_placement_group(pg_id, f"pg-{i}", node_id))
            slots[0] -= 1.0
            cpus -= 1.0
            actor_rows.append(
                actor(
                    f"trainer-{i}",
                    "Trainer",
                    {f"GPU_group_{pg_id}": 1.0, f"GPU_group_0_{pg_id}": 1.0},
                    node_id=node_id,
                    placement_group_id=pg_id,
                )
            )
        for j in range(actors_per_node):
            class_name, gpus = _ACTOR_MIX[j % len(_ACTOR_MIX)]
            gpus = gpus if _take(slots, gpus) else 0.0
            cpu = 1.0 if cpus >= 1.0 else 0.0
            cpus -= cpu
            required = {key: value for key, value in (("GPU", gpus), ("CPU", cpu)) if value}
            actor_rows.append(actor(f"{class_name}-{i}-{j}", class_name, required, node_id=node_id))
        usage[node_id] = {
            "CPU": [CPUS_PER_NODE - cpus, float(CPUS_PER_NODE)],
            "GPU": [round(GPUS_PER_NODE - sum(slots), 4), float(GPUS_PER_NODE)],
        }
    actor_rows.append(actor("too-big", "Worker", {"GPU": 16.0}, state="PENDING_CREATION"))
    actor_rows.append(actor("marker-wait", "MarkerWorker", {"GPU": 8.0}, state="PENDING_CREATION"))
    return {
        "version": {"ray_commit": "b7f4259e944b", "ray_version": "2.60.0", "version": "4"},
        "nodes_detail": _listing([_node(i, node_id) for i, node_id in enumerate(node_ids)]),
        "actors_detail": _listing(actor_rows),
        "nodes_summary": {"data": {"summary": [_summary(i, n) for i, n in enumerate(node_ids)]}},
        "cluster_status": _cluster_status(usage),
        "cluster_events": _listing([_event("{'GPU': 16.0}")]),
        "placement_groups": _listing(groups),
    }


def _take(slots: list[float], gpus: float) -> bool:
    """Reserve `gpus` on the node's slots the way Ray must (a fraction on one GPU)."""
    if gpus >= 1:
        free = [i for i, slot in enumerate(slots) if slot == 1.0][: int(gpus)]
        for i in free if len(free) == int(gpus) else ():
            slots[i] = 0.0
        return len(free) == int(gpus)
    index = next((i for i, slot in enumerate(slots) if slot >= gpus - 1e-9), None)
    if index is not None:
        slots[index] = round(slots[index] - gpus, 4)
    return index is not None


def _hex(kind: str, key: str, length: int) -> str:
    return hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:length]


def _ip(i: int) -> str:
    return f"10.0.{i // 250}.{i % 250 + 1}"


def _listing(result_rows: list[dict[str, Any]]) -> dict[str, Any]:
    count = len(result_rows)
    return {
        "data": {
            "result": {
                "num_after_truncation": count,
                "num_filtered": count,
                "partial_failure_warning": "",
                "result": result_rows,
                "total": count,
                "warnings": None,
            }
        },
        "msg": "",
        "result": True,
    }


def _resources(i: int) -> dict[str, float]:
    resources = {
        "CPU": float(CPUS_PER_NODE),
        "GPU": float(GPUS_PER_NODE),
        "memory": 512.0 * GIB,
        f"node:{_ip(i)}": 1.0,
        "object_store_memory": 64.0 * GIB,
    }
    return {**resources, "node:__internal_head__": 1.0} if i == 0 else resources


def _node(i: int, node_id: str) -> dict[str, Any]:
    return {
        "end_time_ms": 0,
        "is_head_node": i == 0,
        "labels": {"ray.io/node-id": node_id},
        "node_id": node_id,
        "node_ip": _ip(i),
        "node_name": _ip(i),
        "resources_total": _resources(i),
        "start_time_ms": 1795771202369 + i,
        "state": "ALIVE",
        "state_message": None,
    }


def _summary(i: int, node_id: str) -> dict[str, Any]:
    resources = _resources(i)
    # this endpoint camelCases resource names; nodes_detail keeps them as declared
    resources["objectStoreMemory"] = resources.pop("object_store_memory")
    return {
        "hostname": f"gpu-{i:04d}",
        "ip": _ip(i),
        "cpus": [CPUS_PER_NODE, CPUS_PER_NODE // 2],
        "mem": [1024 * GIB, 900 * GIB, 12.1, 124 * GIB],
        "gpus": nvml_gpus(GPUS_PER_NODE, used_mib=1024.0 * (i % 30), utilization=float(i % 100)),
        "tpus": [],
        "raylet": {
            "nodeId": node_id,
            "isHeadNode": i == 0,
            "state": "ALIVE",
            "nodeManagerAddress": _ip(i),
            "nodeName": _ip(i),
            "resourcesTotal": resources,
        },
    }


def _placement_group(pg_id: str, name: str, node_id: str) -> dict[str, Any]:
    return {
        "bundles": [
            {
                "bundle_id": {"bundle_index": 0, "placement_group_id": pg_id},
                "label_selector": {},
                "node_id": node_id,
                "unit_resources": {"CPU": 1.0, "GPU": 1.0},
            }
        ],
        "creator_job_id": "01000000",
        "is_detached": True,
        "name": name,
        "placement_group_id": pg_id,
        "state": "CREATED",
    }


def _cluster_status(usage: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    report = {
        "resourceDemand": [[{"GPU": 16.0}, 1], [{"GPU": 8.0}, 1]],
        "pgDemand": [],
        "requestDemand": [],
        "usageByNode": usage,
    }
    return {"data": {"clusterStatus": {"loadMetricsReport": report}}, "msg": "", "result": True}


def _event(request: str) -> dict[str, Any]:
    return {
        "event_id": _hex("event", request, length=36),
        "message": f"Error: No available node types can fulfill resource request {request}. "
        "Add suitable node types to this cluster to resolve this issue.",
        "severity": "INFO",
        "source_type": "AUTOSCALER",
        "time": "2026-11-27 09:20:07",
    }


def pool_spec_of(
    name: str, size: int, gpus: float, cpus: float = 0.0, concurrency: dict | None = None
):
    """A PoolSpec as the tests describe a pool: its size, GPU and CPU share, and concurrency."""
    from openrag_tui.config.pools import PoolSpec

    given = concurrency or {}
    slots = given.get("max_tasks_per_worker", given.get("max_processes", 1))
    return PoolSpec(
        name, size, gpus, cpus, slots, "openrag",
        min_processes=given.get("min_processes", 0),
        max_tasks_per_child=given.get("max_tasks_per_child", 0),
    )  # fmt: skip


#: the pools the benches give the generated clusters' views (indexer 8 × 0.5 GPU, marker 4 × 1)
GENERATED_POOLS = (
    pool_spec_of("indexer", 8, 0.5, 0.1, {"max_tasks_per_worker": 5}),
    pool_spec_of("marker", 4, 1.0, 0.1, {"max_processes": 2, "min_processes": 1,
                                      "max_tasks_per_child": 10}),
)  # fmt: skip
