"""Figures drawn from a `ClusterState`: GPU reserved per node, pool and GPU slot, and what fits.

Everything here is Ray's logical accounting (`gpus_reserved`), never physical use.

Which actors reserve: only ALIVE actors on ALIVE nodes, and placement-group bundles placed on
ALIVE nodes. A RESTARTING actor reserves nothing: its worker died, its lease went back to the
node, and Ray schedules it again like a new actor. An actor inside a known placement group is not
counted: its bundle already is. Pool actors are counted by owner too: ours (`openrag-tui`) can
be resized from here, OpenRAG's own cannot, but both hold GPUs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from openrag_tui.cluster.gpumemory import ActorGpuMemory, actor_gpu_memory, memory_warnings
from openrag_tui.cluster.pending import PendingActor, explain_pending
from openrag_tui.cluster.rooms import (
    GPU,
    Room,
    amount,
    as_units,
    fits,
    gpu_capacities,
    pack,
    room,
    units,
)
from openrag_tui.cluster.state import PENDING_STATES, Actor, ClusterState, Node
from openrag_tui.cluster.warnings import view_warnings
from openrag_tui.config.pools import FACTS, OPENRAG, OURS, OWNERS, POOLS, PoolSpec

__all__ = [
    "OTHER",
    "POOLS",
    "ClusterView",
    "NodeAllocation",
    "OwnerCounts",
    "PendingActor",
    "PoolStatus",
    "ScalePreview",
    "build_view",
    "pack_gpus",
    "scale_preview",
]

OTHER = "other"


@dataclass(frozen=True)
class NodeAllocation:
    """One node's GPUs as Ray reserved them, split by who reserved them.

    `reserved_by` has `indexer`, `marker` and `other`; `other` is the non-pool actors
    (`other_by_class`) plus placement-group bundles (`placement_groups_gpus`). `gpu_slots` is an
    estimate of the amount reserved on each GPU instance (see `rooms`). A DEAD node reserves
    nothing and has nothing free. `actors` are the ALIVE actors on the node.
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
class OwnerCounts:
    """One owner's actors in a pool, by state."""

    alive: int = 0
    pending: int = 0
    restarting: int = 0
    dead: int = 0
    gpus_reserved: float = 0.0


@dataclass(frozen=True)
class PoolStatus:
    """A pool against its target. `fits_*` is None when the per-actor request is empty.

    Counts are totals over both owners; `owners` splits them, and `ours` is the part a resize
    from here acts on. `invalid` holds the .env text of the pool's variables that were refused
    (the figures then use OpenRAG's defaults)."""

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
    owners: Mapping[str, OwnerCounts] = field(default_factory=dict)
    invalid: Mapping[str, str] = field(default_factory=dict)

    @property
    def ours(self) -> OwnerCounts:
        return self.owners.get(OURS, OwnerCounts())

    @property
    def openrags(self) -> OwnerCounts:
        return self.owners.get(OPENRAG, OwnerCounts())


@dataclass(frozen=True)
class ScalePreview:
    """What a resize to `size` would give right now: how many run, how many stay pending."""

    size: int
    running: int
    pending: int
    retiring: int


def scale_preview(pool: PoolStatus, size: int) -> ScalePreview:
    """Before a resize of our pool: our alive actors stay, new ones take what fits now, the rest
    wait; our alive actors above `size` retire once their in-flight work is done. OpenRAG's own
    actors are not ours to add or retire. An estimate: Ray places the new actors."""
    alive = pool.ours.alive
    if size <= alive:
        return ScalePreview(size, size, 0, alive - size)
    room_now = size - alive if pool.fits_more is None else pool.fits_more
    starting = min(size - alive, room_now)
    return ScalePreview(size, alive + starting, size - alive - starting, 0)


@dataclass(frozen=True)
class ClusterView:
    """What the screen and `status --json` show: one consistent reading of one state."""

    state: ClusterState
    nodes: tuple[NodeAllocation, ...]
    pools: tuple[PoolStatus, ...]
    pending: tuple[PendingActor, ...]
    warnings: tuple[str, ...]
    gpu_memory: Mapping[str, ActorGpuMemory] = field(default_factory=dict)  # by actor id


@dataclass(frozen=True)
class _Reservation:
    owner: str  # a pool, or OTHER
    class_name: str | None  # None for a placement-group bundle
    resources: Mapping[str, float]


def build_view(
    state: ClusterState,
    pools: Sequence[PoolSpec],
    now: float,
    stale_after: float,
    invalid: Mapping[str, str] | None = None,
    previous: ClusterState | None = None,
) -> ClusterView:
    """Every figure the panel shows, computed once from one state (`previous`: the state of
    the refresh before, to tell which actors died since)."""
    reservations = _reservations_by_node(state)
    actors = _alive_actors_by_node(state)
    every = [_room_of(node, reservations.get(node.node_id, ())) for node in state.nodes]
    nodes = tuple(
        _node_allocation(
            space, reservations.get(space.node.node_id, ()), actors.get(space.node.node_id, ())
        )
        for space in every
    )
    rooms = [space for space in every if space.node.is_alive]
    idle = [room(space.node, ()) for space in rooms]
    refused = invalid or {}
    statuses = tuple(
        _pool_status(spec, state.actors, nodes, rooms, idle, refused) for spec in pools
    )
    pending = explain_pending(state, rooms, idle)
    gpu_memory = actor_gpu_memory(state)
    warnings = view_warnings(state, statuses, now, stale_after, previous)
    warnings += tuple(memory_warnings(gpu_memory))
    return ClusterView(state, nodes, statuses, pending, warnings, gpu_memory)


def pack_gpus(gpus_total: float, requests: Iterable[float]) -> tuple[float, ...]:
    """Estimated GPU reserved on each instance of a node (see `NodeAllocation.gpu_slots`)."""
    reserved = pack(gpu_capacities(gpus_total), [units(value) for value in requests])
    return tuple(amount(count) for count in reserved)


# Reservations


def _reservations_by_node(state: ClusterState) -> dict[str, list[_Reservation]]:
    """ALIVE actors outside known placement groups, plus placed bundles, grouped by node."""
    known_groups = {group.pg_id for group in state.placement_groups}
    by_node: dict[str, list[_Reservation]] = defaultdict(list)
    for actor in state.actors:
        if actor.state != "ALIVE" or actor.node_id is None:
            continue
        if actor.placement_group_id in known_groups:
            continue
        pool = actor.pool
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
    return {node_id: tuple(found) for node_id, found in by_node.items()}


def _room_of(node: Node, reservations: Sequence[_Reservation]) -> Room:
    return room(node, (r.resources for r in reservations))


def _node_allocation(
    space: Room, reservations: Sequence[_Reservation], actors: tuple[Actor, ...]
) -> NodeAllocation:
    node = space.node
    if not node.is_alive:
        return _dead_allocation(node)
    by_owner = dict.fromkeys((*POOLS, OTHER), 0)
    by_class: dict[str, int] = defaultdict(int)
    groups = 0
    for reservation in reservations:
        count = units(reservation.resources.get(GPU, 0.0))
        by_owner[reservation.owner] += count
        if reservation.owner != OTHER or not count:
            continue
        if reservation.class_name is None:
            groups += count
        else:
            by_class[reservation.class_name] += count
    return NodeAllocation(
        node=node,
        gpus_total=node.gpus,
        gpus_reserved=amount(sum(by_owner.values())),
        gpus_free=amount(sum(space.gpu_free)),
        reserved_by={owner: amount(count) for owner, count in by_owner.items()},
        other_by_class={name: amount(count) for name, count in sorted(by_class.items())},
        placement_groups_gpus=amount(groups),
        actors=actors,
        gpu_slots=tuple(amount(count) for count in space.gpu_reserved),
        resources_free=_free_resources(space),
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


def _free_resources(space: Room) -> dict[str, float]:
    free = {GPU: amount(sum(space.gpu_free))} if space.gpu_capacity else {}
    free.update((key, amount(count)) for key, count in sorted(space.other_free.items()))
    return free


# Pools


def _owner_counts(actors: Iterable[Actor], reserving: set[str]) -> OwnerCounts:
    """Counts by state, and the GPUs held by those of the actors that reserve (see the top)."""
    found = list(actors)
    states = [actor.state for actor in found]
    held = sum(units(actor.gpus) for actor in found if actor.actor_id in reserving)
    return OwnerCounts(
        alive=states.count("ALIVE"),
        pending=sum(state in PENDING_STATES for state in states),
        restarting=states.count("RESTARTING"),
        dead=states.count("DEAD"),
        gpus_reserved=amount(held),
    )


def _pool_status(
    spec: PoolSpec,
    actors: Sequence[Actor],
    nodes: Sequence[NodeAllocation],
    rooms: Sequence[Room],
    idle: Sequence[Room],
    invalid: Mapping[str, str],
) -> PoolStatus:
    """A pool against its target. `gpus_reserved` sums the nodes' `reserved_by` for the pool."""
    members = [actor for actor in actors if actor.pool == spec.name]
    reserving = {actor.actor_id for node in nodes for actor in node.actors}
    total = _owner_counts(members, reserving)
    owners = {
        owner: _owner_counts((a for a in members if a.owner == owner), reserving)
        for owner in OWNERS
    }
    request = as_units(spec.request)
    return PoolStatus(
        name=spec.name,
        target=spec.size,
        alive=total.alive,
        pending=total.pending,
        restarting=total.restarting,
        dead=total.dead,
        gpus_per_actor=spec.num_gpus,
        gpus_reserved=amount(sum(units(node.reserved_by[spec.name]) for node in nodes)),
        gpus_target=amount(spec.size * units(spec.num_gpus)),
        fits_more=fits(request, rooms),
        fits_on_idle=fits(request, idle),
        concurrency=spec.concurrency,
        owners=owners,
        invalid={key: invalid[key] for key in FACTS[spec.name].keys if key in invalid},
    )
