"""Figures drawn from a `ClusterState`: GPU reserved per node, pool and GPU slot; what fits; why
an actor is pending.

Everything here is Ray's logical accounting (`gpus_reserved`), never physical use. Amounts are
computed in Ray's fixed point (1/10000 of a unit) so that 0.1 + 0.2 is exactly 0.3.

Which actors reserve: only ALIVE actors on ALIVE nodes, and placement-group bundles placed on
ALIVE nodes. A RESTARTING actor reserves nothing: its worker died, its lease went back to the
node, and Ray schedules it again like a new actor. An actor inside a known placement group is not
counted: its bundle already is.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openrag_tui.cluster.state import PENDING_STATES, Actor, ClusterState, Node, PlacementGroup

if TYPE_CHECKING:
    from openrag_tui.config import Settings

POOLS = ("indexer", "marker")
OTHER = "other"
_POOL_OF_CLASS = {
    "DocSerializer": "indexer",
    "IndexerWorkerActor": "indexer",
    "TuiIndexerWorker": "indexer",
    "MarkerWorker": "marker",
    "TuiMarkerWorker": "marker",
}

UNIT = 10_000  # Ray's fixed point: resources are counted in 1/10000 of a unit
GPU = "GPU"
_BYTES = frozenset({"memory", "object_store_memory"})
_GIB = 2**30
_REQUEST_DICT = re.compile(r"\{[^{}]*\}")

Units = Mapping[str, int]


def pool_of(actor: Actor) -> str | None:
    """The pool an actor belongs to, by class name (OpenRAG's and the panel's own); else None."""
    return _POOL_OF_CLASS.get(actor.class_name)


@dataclass(frozen=True)
class PoolTarget:
    """What the shared .env asks of one pool: size, per-actor request, concurrency."""

    name: str
    target: int
    gpus_per_actor: float
    cpus_per_actor: float
    concurrency: Mapping[str, int]

    @property
    def request(self) -> dict[str, float]:
        """The resources one actor of the pool asks Ray for."""
        return {k: v for k, v in ((GPU, self.gpus_per_actor), ("CPU", self.cpus_per_actor)) if v}


def pool_targets(settings: Settings) -> tuple[PoolTarget, PoolTarget]:
    """The indexer and marker targets, read from Settings (the .env is the one source)."""
    indexer = PoolTarget(
        name="indexer",
        target=settings.ray_pool_size,
        gpus_per_actor=settings.ray_num_gpus,
        cpus_per_actor=settings.pool_num_cpus,
        concurrency={"max_tasks_per_worker": settings.ray_max_tasks_per_worker},
    )
    marker = PoolTarget(
        name="marker",
        target=settings.marker_pool_size,
        gpus_per_actor=settings.marker_num_gpus,
        cpus_per_actor=settings.pool_num_cpus,
        concurrency={
            "max_processes": settings.marker_max_processes,
            "min_processes": settings.marker_min_processes,
            "max_tasks_per_child": settings.marker_max_tasks_per_child,
        },
    )
    return indexer, marker


@dataclass(frozen=True)
class NodeAllocation:
    """One node's GPUs as Ray reserved them, split by who reserved them.

    `reserved_by` has `indexer`, `marker` and `other`; `other` is the non-pool actors
    (`other_by_class`) plus placement-group bundles (`placement_groups_gpus`). `gpu_slots` is an
    ESTIMATE of the amount reserved on each GPU instance: the dashboard does not say where each
    fraction landed, so the node's requests are packed the way Ray must have fitted them (whole
    requests first, then fractions first-fit-decreasing). A DEAD node reserves nothing and has
    nothing free. `actors` are the ALIVE actors on the node.
    """

    node: Node
    gpus_total: float
    gpus_reserved: float
    gpus_free: float
    reserved_by: Mapping[str, float]
    other_by_class: Mapping[str, float]
    placement_groups_gpus: float
    actors: tuple[Actor, ...]
    gpu_slots: tuple[float, ...]
    resources_free: Mapping[str, float]


@dataclass(frozen=True)
class PoolStatus:
    """A pool against its target. `fits_*` is None when the per-actor request is empty."""

    name: str
    target: int
    alive: int
    pending: int
    restarting: int
    dead: int
    gpus_per_actor: float
    gpus_reserved: float
    gpus_target: float
    fits_more: int | None  # more actors that could be placed right now
    fits_on_idle: int | None  # actors the alive nodes could hold if nothing else ran
    concurrency: Mapping[str, int]


@dataclass(frozen=True)
class ScalePreview:
    """What a resize to `size` would give right now: how many run, how many stay pending."""

    size: int
    running: int
    pending: int
    retiring: int


def scale_preview(pool: PoolStatus, size: int) -> ScalePreview:
    """Before a resize: the alive actors stay, new ones take what fits now, the rest wait.

    Alive actors above `size` retire once their in-flight work is done. An estimate: Ray places
    the new actors, and the cluster may change meanwhile.
    """
    if size <= pool.alive:
        return ScalePreview(size, size, 0, pool.alive - size)
    room = size - pool.alive if pool.fits_more is None else pool.fits_more
    starting = min(size - pool.alive, room)
    return ScalePreview(size, pool.alive + starting, size - pool.alive - starting, 0)


@dataclass(frozen=True)
class PendingActor:
    """An actor Ray has not placed, and a plain sentence saying why."""

    actor: Actor
    pool: str | None
    required: Mapping[str, float]
    reason: str  # "waiting" (some node could hold it, none now) or "infeasible" (none ever)
    detail: str
    autoscaler_message: str | None


@dataclass(frozen=True)
class ClusterView:
    """What the screen and `status --json` show: one consistent reading of one state."""

    state: ClusterState
    nodes: tuple[NodeAllocation, ...]
    pools: tuple[PoolStatus, ...]
    pending: tuple[PendingActor, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Room:
    """What a node can still give: GPU instances (capacity, estimated reserved) and the rest."""

    node: Node
    gpu_capacity: tuple[int, ...]
    gpu_reserved: tuple[int, ...]
    other_free: Units

    @property
    def gpu_free(self) -> tuple[int, ...]:
        pairs = zip(self.gpu_capacity, self.gpu_reserved, strict=True)
        return tuple(max(0, cap - used) for cap, used in pairs)


@dataclass(frozen=True)
class _Reservation:
    owner: str  # a pool, or OTHER
    class_name: str | None  # None for a placement-group bundle
    resources: Mapping[str, float]


def build_view(
    state: ClusterState, pools: Sequence[PoolTarget], now: float, stale_after: float
) -> ClusterView:
    """Every figure the panel shows, computed once from one state."""
    reservations = _reservations_by_node(state)
    actors = _alive_actors_by_node(state)
    every = [_room(node, reservations.get(node.node_id, ())) for node in state.nodes]
    nodes = tuple(
        _node_allocation(
            room, reservations.get(room.node.node_id, ()), actors.get(room.node.node_id, ())
        )
        for room in every
    )
    rooms = [room for room in every if room.node.is_alive]
    idle = [_room(room.node, ()) for room in rooms]
    statuses = tuple(_pool_status(target, state.actors, nodes, rooms, idle) for target in pools)
    pending = _pending(state, rooms, idle)
    warnings = _warnings(state, statuses, now, stale_after)
    return ClusterView(state, nodes, statuses, pending, warnings)


def pack_gpus(gpus_total: float, requests: Iterable[float]) -> tuple[float, ...]:
    """Estimated GPU reserved on each instance of a node (see `NodeAllocation.gpu_slots`)."""
    reserved = _pack(_gpu_capacities(gpus_total), [_units(amount) for amount in requests])
    return tuple(_amount(units) for units in reserved)


# Units, reservations and packing


def _units(amount: float) -> int:
    return round(amount * UNIT)


def _amount(units: int) -> float:
    return units / UNIT


def _as_units(resources: Mapping[str, float]) -> dict[str, int]:
    """A request in units, without the zero amounts (they constrain nothing)."""
    return {key: units for key, amount in resources.items() if (units := _units(amount)) > 0}


def _reservations_by_node(state: ClusterState) -> dict[str, list[_Reservation]]:
    """ALIVE actors outside known placement groups, plus placed bundles, grouped by node."""
    known_groups = {group.pg_id for group in state.placement_groups}
    by_node: dict[str, list[_Reservation]] = defaultdict(list)
    for actor in state.actors:
        if actor.state != "ALIVE" or actor.node_id is None:
            continue
        if actor.placement_group_id in known_groups:
            continue
        pool = pool_of(actor)
        class_name = None if pool else actor.class_name
        by_node[actor.node_id].append(_Reservation(pool or OTHER, class_name, actor.required))
    for group in state.placement_groups:
        if group.state == "REMOVED":  # its bundles gave their resources back
            continue
        for bundle in group.bundles:
            if bundle.node_id is not None:
                by_node[bundle.node_id].append(_Reservation(OTHER, None, bundle.resources))
    return by_node


def _alive_actors_by_node(state: ClusterState) -> dict[str, tuple[Actor, ...]]:
    by_node: dict[str, list[Actor]] = defaultdict(list)
    for actor in state.actors:
        if actor.state == "ALIVE" and actor.node_id is not None:
            by_node[actor.node_id].append(actor)
    return {node_id: tuple(actors) for node_id, actors in by_node.items()}


def _gpu_capacities(gpus_total: float) -> list[int]:
    """GPU instances of a node, in units: whole GPUs, plus a last partial one if declared so."""
    whole, rest = divmod(_units(gpus_total), UNIT)
    return [UNIT] * whole + ([rest] if rest else [])


def _pack(capacities: Sequence[int], requests: Iterable[int]) -> list[int]:
    """Units reserved per instance: whole requests take whole free GPUs, then fractions go
    first-fit decreasing. Should the estimate run out of room, a request piles onto the freest
    instances rather than vanish: Ray did place it."""
    reserved = [0] * len(capacities)
    if not capacities:
        return reserved
    ordered = sorted((units for units in requests if units > 0), reverse=True)
    for units in (u for u in ordered if u >= UNIT):
        whole_free = [i for i, cap in enumerate(capacities) if cap == UNIT and not reserved[i]]
        needed = -(-units // UNIT)
        if len(whole_free) < needed:
            whole_free = sorted(range(len(capacities)), key=lambda i: reserved[i] - capacities[i])
        for i in whole_free[:needed]:
            take = min(UNIT, units)
            reserved[i] += take
            units -= take
    for units in (u for u in ordered if u < UNIT):
        fitting = (i for i, cap in enumerate(capacities) if cap - reserved[i] >= units)
        freest = max(range(len(capacities)), key=lambda i: capacities[i] - reserved[i])
        reserved[next(fitting, freest)] += units
    return reserved


def _room(node: Node, reservations: Sequence[_Reservation]) -> _Room:
    """A node's capacity minus what the reservations hold; an empty room for a dead node."""
    capacity = _gpu_capacities(node.gpus)
    if not node.is_alive:
        return _Room(node, tuple(capacity), tuple(capacity), {})
    reserved = _pack(capacity, (_units(r.resources.get(GPU, 0.0)) for r in reservations))
    other = {key: units for key, units in _as_units(node.resources_total).items() if key != GPU}
    for reservation in reservations:
        for key, units in _as_units(reservation.resources).items():
            if key != GPU:
                other[key] = other.get(key, 0) - units
    free = {key: max(0, units) for key, units in other.items()}
    return _Room(node, tuple(capacity), tuple(reserved), free)


def _node_allocation(
    room: _Room, reservations: Sequence[_Reservation], actors: tuple[Actor, ...]
) -> NodeAllocation:
    node = room.node
    if not node.is_alive:
        return _dead_allocation(node)
    by_owner = dict.fromkeys((*POOLS, OTHER), 0)
    by_class: dict[str, int] = defaultdict(int)
    groups = 0
    for reservation in reservations:
        units = _units(reservation.resources.get(GPU, 0.0))
        by_owner[reservation.owner] += units
        if reservation.owner != OTHER or not units:
            continue
        if reservation.class_name is None:
            groups += units
        else:
            by_class[reservation.class_name] += units
    return NodeAllocation(
        node=node,
        gpus_total=node.gpus,
        gpus_reserved=_amount(sum(by_owner.values())),
        gpus_free=_amount(sum(room.gpu_free)),
        reserved_by={owner: _amount(units) for owner, units in by_owner.items()},
        other_by_class={name: _amount(units) for name, units in sorted(by_class.items())},
        placement_groups_gpus=_amount(groups),
        actors=actors,
        gpu_slots=tuple(_amount(units) for units in room.gpu_reserved),
        resources_free=_free_resources(room),
    )


def _dead_allocation(node: Node) -> NodeAllocation:
    """A dead node holds nothing and offers nothing, whatever stale actor rows still say."""
    return NodeAllocation(
        node=node,
        gpus_total=node.gpus,
        gpus_reserved=0.0,
        gpus_free=0.0,
        reserved_by=dict.fromkeys((*POOLS, OTHER), 0.0),
        other_by_class={},
        placement_groups_gpus=0.0,
        actors=(),
        gpu_slots=(),
        resources_free={},
    )


def _free_resources(room: _Room) -> dict[str, float]:
    free = {GPU: _amount(sum(room.gpu_free))} if room.gpu_capacity else {}
    free.update((key, _amount(units)) for key, units in sorted(room.other_free.items()))
    return free


# What fits


def _copies(request: Units, room: _Room) -> int:
    """How many copies of a non-empty request the room holds (exact for identical requests)."""
    limits = [room.other_free.get(key, 0) // need for key, need in request.items() if key != GPU]
    gpu = request.get(GPU, 0)
    if gpu >= UNIT:
        whole_free = sum(1 for free in room.gpu_free if free >= UNIT)
        limits.append(whole_free // -(-gpu // UNIT))
    elif gpu:
        limits.append(sum(free // gpu for free in room.gpu_free))
    return min(limits)


def _holds(request: Units, room: _Room) -> bool:
    return not request or _copies(request, room) > 0


def _fits(request: Units, rooms: Sequence[_Room]) -> int | None:
    """Copies the rooms hold together; None when the request asks for nothing (no limit)."""
    return sum(_copies(request, room) for room in rooms) if request else None


def _pool_status(
    target: PoolTarget,
    actors: Sequence[Actor],
    nodes: Sequence[NodeAllocation],
    rooms: Sequence[_Room],
    idle: Sequence[_Room],
) -> PoolStatus:
    """A pool against its target. `gpus_reserved` sums the nodes' `reserved_by` for the pool."""
    states = [actor.state for actor in actors if pool_of(actor) == target.name]
    request = _as_units(target.request)
    return PoolStatus(
        name=target.name,
        target=target.target,
        alive=states.count("ALIVE"),
        pending=sum(state in PENDING_STATES for state in states),
        restarting=states.count("RESTARTING"),
        dead=states.count("DEAD"),
        gpus_per_actor=target.gpus_per_actor,
        gpus_reserved=_amount(sum(_units(node.reserved_by[target.name]) for node in nodes)),
        gpus_target=_amount(target.target * _units(target.gpus_per_actor)),
        fits_more=_fits(request, rooms),
        fits_on_idle=_fits(request, idle),
        concurrency=dict(target.concurrency),
    )


# Why an actor is pending


def _pending(
    state: ClusterState, rooms: Sequence[_Room], idle: Sequence[_Room]
) -> tuple[PendingActor, ...]:
    """Pending actors, infeasible ones first, each with the sentence that explains it."""
    groups = {group.pg_id: group for group in state.placement_groups}
    requests = _autoscaler_requests(state.autoscaler_messages)
    pending = []
    for actor in state.actors:
        if not actor.is_pending:
            continue
        group = groups.get(actor.placement_group_id) if actor.placement_group_id else None
        reason, detail = _classify(actor, group, rooms, idle)
        message = _autoscaler_message(actor.required, requests)
        pending.append(PendingActor(actor, pool_of(actor), actor.required, reason, detail, message))
    pending.sort(key=lambda p: (p.reason, p.actor.class_name, p.actor.name, p.actor.actor_id))
    return tuple(pending)


def _classify(
    actor: Actor, group: PlacementGroup | None, rooms: Sequence[_Room], idle: Sequence[_Room]
) -> tuple[str, str]:
    if not idle:
        return "infeasible", "no node is alive"
    if group is not None:
        return _classify_in_group(group, idle)
    request = _as_units(actor.required)
    never = _why_never(request, idle)
    if never:
        return "infeasible", never
    if actor.state == "DEPENDENCIES_UNREADY":
        return "waiting", "waits for its dependencies (arguments or runtime env)"
    candidates = [room for room, empty in zip(rooms, idle, strict=True) if _holds(request, empty)]
    return "waiting", _why_waiting(request, candidates)


def _classify_in_group(group: PlacementGroup, idle: Sequence[_Room]) -> tuple[str, str]:
    """An actor in a placement group waits on its bundle, not on a node's free room."""
    name = f"placement group '{group.name or group.pg_id}'"
    if group.state == "REMOVED":
        return "infeasible", f"its {name} was removed"
    for bundle in group.bundles:
        never = _why_never(_as_units(bundle.resources), idle)
        if never:
            return "infeasible", f"its {name} cannot be placed: a bundle {never}"
    if group.state == "CREATED":
        return "waiting", f"waits for room in its {name}"
    return "waiting", f"waits for its {name} ({group.state}) to be placed"


def _why_never(request: Units, idle: Sequence[_Room]) -> str | None:
    """Why no alive node could ever hold the request, or None when one could."""
    if any(_holds(request, room) for room in idle):
        return None
    for key in _ordered(request):
        need = request[key]
        best, _ = _best(key, need, idle)
        if best >= need:
            continue
        if key == GPU and need < UNIT:
            if not best:
                return f"needs {_quantity(key, need)} on one GPU; no node has a GPU"
            largest = _figure(key, best)
            return f"needs {_quantity(key, need)} on one GPU; the largest GPU has {largest}"
        if not best:
            return f"needs {_quantity(key, need)}; no node has {key}"
        return f"needs {_quantity(key, need)}; the largest node has {_figure(key, best)}"
    return f"needs {_describe(request)}; no single node has all of it"


def _why_waiting(request: Units, candidates: Sequence[_Room]) -> str:
    """Which resource is short now on the nodes that could hold the request."""
    fitting = next((room for room in candidates if _holds(request, room)), None)
    if fitting is not None:
        return f"fits on {fitting.node.label} now; Ray has not placed it yet"
    short = []
    for key in _ordered(request):
        need = request[key]
        best, room = _best(key, need, candidates)
        if best < need:
            short.append(f"needs {_shortfall(key, need, best)} ({room.node.label})")
    return "; ".join(short) or f"needs {_describe(request)}; no node has all of it free at once"


def _shortfall(key: str, need: int, best: int) -> str:
    """The need and the best offer, worded for how the resource is counted."""
    most = _figure(key, best)
    if key != GPU:
        return f"{_quantity(key, need)}; most free on one node is {most}"
    if need < UNIT:
        return f"{_quantity(key, need)} on one GPU; most free on one GPU is {most}"
    plural = "" if best == UNIT else "s"
    return f"{_quantity(key, need)}; most free on one node is {most} whole GPU{plural}"


def _offer(key: str, need: int, room: _Room) -> int:
    """What a room offers toward one resource of a request, in units comparable to `need`."""
    if key != GPU:
        return room.other_free.get(key, 0)
    if need >= UNIT:
        return UNIT * sum(1 for free in room.gpu_free if free >= UNIT)
    return max(room.gpu_free, default=0)


def _best(key: str, need: int, rooms: Sequence[_Room]) -> tuple[int, _Room]:
    """The room offering the most toward `key` (the first one on ties)."""
    return max(((_offer(key, need, room), room) for room in rooms), key=lambda pair: pair[0])


def _ordered(request: Units) -> list[str]:
    return sorted(request, key=lambda key: (key != GPU, key != "CPU", key))


def _figure(key: str, units: int) -> str:
    amount = _amount(units)
    if key in _BYTES:
        return f"{amount / _GIB:.1f} GiB"
    return f"{amount:.4f}".rstrip("0").rstrip(".")


def _quantity(key: str, units: int) -> str:
    return f"{_figure(key, units)} {key}"


def _describe(request: Units) -> str:
    return " and ".join(_quantity(key, request[key]) for key in _ordered(request))


# The autoscaler's words


def _autoscaler_requests(messages: Iterable[str]) -> list[tuple[dict[str, int], str]]:
    """Request dicts quoted in autoscaler messages (e.g. "{'GPU': 8.0}"), with their message."""
    found = []
    for message in messages:
        for text in _REQUEST_DICT.findall(message):
            request = _parse_request(text)
            if request:
                found.append((request, message))
    return found


def _parse_request(text: str) -> dict[str, int] | None:
    try:
        value = ast.literal_eval(text)
        return _as_units({str(key): float(amount) for key, amount in value.items()})
    except (ValueError, TypeError, SyntaxError, AttributeError):
        return None


def _autoscaler_message(required: Mapping[str, float], found: Sequence[tuple]) -> str | None:
    """The latest autoscaler message quoting exactly this request."""
    request = _as_units(required)
    return next((message for shape, message in reversed(found) if shape == request), None)


# Warnings


def _per_actor_gpus(state: ClusterState, pool: str) -> set[int]:
    """The distinct GPU requests (in fixed-point units) of the pool's alive actors."""
    return {
        _units(actor.gpus)
        for actor in state.actors
        if actor.state == "ALIVE" and pool_of(actor) == pool
    }


def _warnings(
    state: ClusterState, pools: Sequence[PoolStatus], now: float, stale_after: float
) -> tuple[str, ...]:
    warnings = []
    age = now - state.fetched_at
    if age > stale_after:
        warnings.append(f"Cluster data is {age:.0f} s old; it may be out of date.")
    if state.actors_truncated:
        warnings.append(
            f"Showing {len(state.actors)} of {state.actors_total} actors: "
            "the figures count only the actors shown."
        )
    for node in state.nodes:
        if not node.is_alive:
            warnings.append(f"Node {node.label} ({node.node_id[:8]}) is {node.state}.")
    for pool in pools:
        started_with = _per_actor_gpus(state, pool.name) - {_units(pool.gpus_per_actor)}
        if started_with:
            amounts = " or ".join(f"{_figure(GPU, units)}" for units in sorted(started_with))
            warnings.append(
                f"Some {pool.name} actors reserve {amounts} GPU each, not the "
                f"{_figure(GPU, _units(pool.gpus_per_actor))} the .env says: they were started "
                "with other settings."
            )
        if pool.fits_on_idle is not None and pool.target > pool.fits_on_idle:
            warnings.append(
                f"The {pool.name} pool wants {pool.target} actors of "
                f"{_figure(GPU, _units(pool.gpus_per_actor))} GPU, but the alive nodes could "
                f"hold only {pool.fits_on_idle} even when idle."
            )
    return tuple(warnings)
