"""The `status --json` object: a `ClusterView` as plain JSON-ready data.

Field names are a contract with scripts: add fields, never rename them. GPU amounts are rounded
to 4 decimals (Ray's own resolution), so 0.1 + 0.2 prints as 0.3.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from openrag_tui.cluster.allocation import ClusterView, NodeAllocation, PendingActor, PoolStatus
from openrag_tui.cluster.gcpause import gc_paused
from openrag_tui.cluster.gpumemory import NOT_GPU, ActorGpuMemory
from openrag_tui.cluster.state import DEATH_REASONS, Actor, GpuDevice
from openrag_tui.cluster.warnings import deaths

DECIMALS = 4


@gc_paused()
def view_as_dict(view: ClusterView, dashboard_url: str) -> dict[str, Any]:
    """The view as one JSON-ready dict: nodes, pools, pending actors and warnings. A 1,000-node
    view holds ~60,000 amounts, a few distinct ones: each is rounded once (`_Rounded`)."""
    state = view.state
    amounts = _Rounded(DECIMALS)
    return {
        "dashboard": dashboard_url,
        "ray_version": state.ray_version,
        "fetched_at": state.fetched_at,
        "actors_total": state.actors_total,
        "actors_shown": len(state.actors),
        "actors_truncated": state.actors_truncated,
        "nodes": [_node(allocation, amounts) for allocation in view.nodes],
        "pools": [_pool(pool, amounts) for pool in view.pools],
        "pending": [_pending(pending, amounts) for pending in view.pending],
        "deaths": [_death(actor) for actor in deaths(state)],
        "warnings": list(view.warnings),
        "actors_gpu_memory": _gpu_memory_rows(view.gpu_memory.values(), amounts),
    }


def _gpu_memory_rows(entries: Iterable[ActorGpuMemory], reserved: _Rounded) -> list[dict[str, Any]]:
    """The GPU actors' rows by node id, then name. A 1,000-node cluster has ~17,000: they are
    sorted node by node (a node's entries are together)."""
    by_node: dict[str, list[ActorGpuMemory]] = {}
    for entry in entries:
        if entry.status != NOT_GPU:
            found = by_node.get(entry.node_id)
            if found is None:
                by_node[entry.node_id] = [entry]
            else:
                found.append(entry)
    shares = _Rounded(1)
    return [
        _gpu_memory(entry, reserved, shares)
        for node_id in sorted(by_node)
        for entry in sorted(by_node[node_id], key=_name)
    ]


_name = attrgetter("name")


class _Rounded(dict[float, float]):
    """Amounts rounded to `digits` decimals, each distinct one once; -0.0 reads 0.0."""

    def __init__(self, digits: int) -> None:
        super().__init__()
        self.digits = digits

    def __missing__(self, amount: float) -> float:
        self[amount] = rounded = round(amount, self.digits) + 0.0  # + 0.0: -0.0 reads 0.0
        return rounded


def _gpu_memory(entry: ActorGpuMemory, reserved: _Rounded, shares: _Rounded) -> dict[str, Any]:
    """One actor's GPU memory as NVML measured it (None: unknown), beside its share."""
    share = entry.share_mib
    return {
        "actor_id": entry.actor_id,
        "name": entry.name,
        "pool": entry.pool,
        "node_id": entry.node_id,
        "gpus_reserved": reserved[entry.reserved],
        "gpu_indexes": list(entry.devices),
        "memory_mib": entry.memory_mib,
        "share_mib": None if share is None else shares[share],
        "status": entry.status,
        "over_share": entry.over_share,
    }


def _node(allocation: NodeAllocation, amounts: _Rounded) -> dict[str, Any]:
    node = allocation.node
    reported = node.gpus_reserved_reported
    return {
        "node_id": node.node_id,
        "ip": node.ip,
        "hostname": node.hostname,
        "is_head": node.is_head,
        "state": node.state,
        "gpus_total": amounts[allocation.gpus_total],
        "gpus_reserved": amounts[allocation.gpus_reserved],
        "gpus_free": amounts[allocation.gpus_free],
        "gpus_reserved_reported": None if reported is None else amounts[reported],
        "reserved_by": {key: amounts[value] for key, value in allocation.reserved_by.items()},
        "other_by_class": {key: amounts[value] for key, value in allocation.other_by_class.items()},
        "placement_groups_gpus": amounts[allocation.placement_groups_gpus],
        "gpu_slots_estimate": [amounts[slot] for slot in allocation.gpu_slots],
        "actors": len(allocation.actors),
        "gpu_devices": [_device(device) for device in node.gpu_devices],
    }


def _device(device: GpuDevice) -> dict[str, Any]:
    return {
        "index": device.index,
        "name": device.name,
        "uuid": device.uuid,
        "memory_used_mib": device.memory_used_mib,
        "memory_total_mib": device.memory_total_mib,
        "utilization": device.utilization,
    }


def _pool(pool: PoolStatus, amounts: _Rounded) -> dict[str, Any]:
    return {
        "name": pool.name,
        "target": pool.target,
        "alive": pool.alive,
        "pending": pool.pending,
        "restarting": pool.restarting,
        "dead": pool.dead,
        "gpus_per_actor": amounts[pool.gpus_per_actor],
        "gpus_reserved": amounts[pool.gpus_reserved],
        "gpus_target": amounts[pool.gpus_target],
        "fits_more": pool.fits_more,
        "fits_on_idle": pool.fits_on_idle,
        "concurrency": dict(pool.concurrency),
        "owners": {
            owner: {
                "alive": counts.alive,
                "pending": counts.pending,
                "restarting": counts.restarting,
                "dead": counts.dead,
            }
            for owner, counts in pool.owners.items()
        },
        "invalid": dict(pool.invalid),
    }


def _death(actor: Actor) -> dict[str, Any]:
    reason = actor.death_reason or "unknown"
    return {
        "actor_id": actor.actor_id,
        "name": actor.name,
        "class_name": actor.class_name,
        "namespace": actor.namespace,
        "pool": actor.pool,
        "owner": actor.owner,
        "reason": reason,
        "cause": DEATH_REASONS[reason],
        "message": actor.death_cause,
    }


def _pending(pending: PendingActor, amounts: _Rounded) -> dict[str, Any]:
    actor = pending.actor
    return {
        "actor_id": actor.actor_id,
        "name": actor.name,
        "class_name": actor.class_name,
        "namespace": actor.namespace,
        "state": actor.state,
        "pool": pending.pool,
        "required": {key: amounts[value] for key, value in pending.required.items()},
        "reason": pending.reason,
        "detail": pending.detail,
        "autoscaler_message": pending.autoscaler_message,
    }
