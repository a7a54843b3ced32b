"""The `status --json` object: a `ClusterView` as JSON-ready data.

Field names are a contract with scripts: add fields, never rename them. GPU amounts are rounded
to 4 decimals (Ray's own resolution), so 0.1 + 0.2 prints as 0.3. The rows a big cluster has
thousands of (nodes, their GPUs, the actors' GPU memory) are msgspec structs whose fields are
the JSON keys: a struct is built in C, five times as fast as a dict, and `json_text` writes it
as an object. `view_as_dict` gives them as plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any

import msgspec

from openrag_tui.cluster.allocation import ClusterView, NodeAllocation, PendingActor, PoolStatus
from openrag_tui.cluster.gcpause import gc_paused
from openrag_tui.cluster.gpumemory import NOT_GPU, ActorGpuMemory
from openrag_tui.cluster.state import DEATH_REASONS, Actor
from openrag_tui.cluster.warnings import deaths

DECIMALS = 4


def view_as_dict(view: ClusterView, dashboard_url: str) -> dict[str, Any]:
    """`view_summary` with its rows as dicts: plain JSON-ready values."""
    summary: dict[str, Any] = msgspec.to_builtins(view_summary(view, dashboard_url))
    return summary


@gc_paused()
def view_summary(view: ClusterView, dashboard_url: str) -> dict[str, Any]:
    """The view as one dict for `json_text`: nodes, pools, pending actors and warnings. A
    1,000-node view holds ~60,000 amounts, a few distinct ones: each is rounded once
    (`_Rounded`)."""
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


def _gpu_memory_rows(entries: Iterable[ActorGpuMemory], reserved: _Rounded) -> list[_GpuMemoryRow]:
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
    indexes = _Lists()
    row = _GpuMemoryRow  # built inline: a call per row would cost a fifth of the rows' time
    return [
        row(
            entry.actor_id,
            entry.name,
            entry.pool,
            entry.node_id,
            reserved[entry.reserved],
            indexes[entry.devices],
            entry.memory_mib,
            None if (share := entry.share_mib) is None else shares[share],
            entry.status,
            entry.over_share,
        )
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


class _Lists(dict[tuple[int, ...], list[int]]):
    """A list of GPU indexes per distinct tuple, shared by the rows that hold it (rows are
    written, never changed; `view_as_dict` copies them)."""

    def __missing__(self, indexes: tuple[int, ...]) -> list[int]:
        self[indexes] = listed = list(indexes)
        return listed


class _GpuMemoryRow(msgspec.Struct, gc=False):
    """One actor's GPU memory as NVML measured it (None: unknown), beside its share."""

    actor_id: str
    name: str
    pool: str | None
    node_id: str
    gpus_reserved: float
    gpu_indexes: list[int]
    memory_mib: float | None
    share_mib: float | None
    status: str
    over_share: bool


class _DeviceRow(msgspec.Struct, gc=False):
    """A GPU of a node as NVML reports it (its processes are in the GPU memory rows)."""

    index: int
    name: str
    uuid: str
    memory_used_mib: float
    memory_total_mib: float
    utilization: float | None


class _NodeRow(msgspec.Struct, gc=False):
    """A node's GPUs: Ray's logical figures, what holds them, and the devices NVML reports."""

    node_id: str
    ip: str
    hostname: str
    is_head: bool
    state: str
    gpus_total: float
    gpus_reserved: float
    gpus_free: float
    gpus_reserved_reported: float | None
    reserved_by: dict[str, float]
    other_by_class: dict[str, float]
    placement_groups_gpus: float
    gpu_slots_estimate: list[float]
    actors: int
    gpu_devices: list[_DeviceRow]


def _node(allocation: NodeAllocation, amounts: _Rounded) -> _NodeRow:
    node = allocation.node
    reported = node.gpus_reserved_reported
    return _NodeRow(
        node.node_id,
        node.ip,
        node.hostname,
        node.is_head,
        node.state,
        amounts[allocation.gpus_total],
        amounts[allocation.gpus_reserved],
        amounts[allocation.gpus_free],
        None if reported is None else amounts[reported],
        {key: amounts[value] for key, value in allocation.reserved_by.items()},
        {key: amounts[value] for key, value in allocation.other_by_class.items()},
        amounts[allocation.placement_groups_gpus],
        [amounts[slot] for slot in allocation.gpu_slots],
        len(allocation.actors),
        [
            _DeviceRow(
                device.index,
                device.name,
                device.uuid,
                device.memory_used_mib,
                device.memory_total_mib,
                device.utilization,
            )
            for device in node.gpu_devices
        ],
    )


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
