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

from openrag_tui.cluster.gcpause import gc_paused
from openrag_tui.cluster.gpumemory import ActorGpuMemory, actor_gpu_memory, memory_warnings
from openrag_tui.cluster.pending import PendingActor, explain_pending
from openrag_tui.cluster.rooms import (
    GPU,
    Room,
    UnitCounts,
    amount,
    as_units,
    fits,
    gpu_capacities,
    pack,
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


#: one reservation: who holds it (a pool, or OTHER), its actor's class (None for a
#: placement-group bundle), and what it holds
_Reservation = tuple[str, str | None, Mapping[str, float]]


@gc_paused()
def build_view(
    state: ClusterState,
    pools: Sequence[PoolSpec],
    now: float,
    stale_after: float,
    invalid: Mapping[str, str] | None = None,
    previous: ClusterState | None = None,
) -> ClusterView:
    """Every figure the panel shows, computed once from one state (`previous`: the state of
    the refresh before, to tell which actors died since). The actors are grouped by node and
    by pool in one pass, the nodes' figures made in another: a 1,000-node cluster has 20,000
    actors, and each pass over them costs."""
    reservations, alive, members = _grouped_actors(state)
    nodes: list[NodeAllocation] = []
    rooms: list[Room] = []
    idle: list[Room] = []
    held_by_owner = dict.fromkeys((*POOLS, OTHER), 0)  # GPU units, over the alive nodes
    counted = UnitCounts()
    for node in state.nodes:
        if not node.is_alive:
            nodes.append(_dead_allocation(node))
            continue
        space, empty, allocation, by_owner = _allocate(
            node, reservations.get(node.node_id, ()), alive.get(node.node_id, ()), counted
        )
        nodes.append(allocation)
        rooms.append(space)
        idle.append(empty)
        for owner, count in by_owner.items():
            held_by_owner[owner] += count
    reserving = {actor.actor_id for allocation in nodes for actor in allocation.actors}
    refused = invalid or {}
    statuses = tuple(
        _pool_status(
            spec, members.get(spec.name, ()), held_by_owner, rooms, idle, reserving, refused
        )
        for spec in pools
    )
    pending = explain_pending(state, rooms, idle)
    gpu_memory = actor_gpu_memory(state)
    warnings = view_warnings(state, statuses, now, stale_after, previous)
    warnings += tuple(memory_warnings(gpu_memory))
    return ClusterView(state, tuple(nodes), statuses, pending, warnings, gpu_memory)


def pack_gpus(gpus_total: float, requests: Iterable[float]) -> tuple[float, ...]:
    """Estimated GPU reserved on each instance of a node (see `NodeAllocation.gpu_slots`)."""
    reserved = pack(gpu_capacities(gpus_total), [units(value) for value in requests])
    return tuple(amount(count) for count in reserved)


# Reservations


def _grouped_actors(
    state: ClusterState,
) -> tuple[dict[str, list[_Reservation]], dict[str, tuple[Actor, ...]], dict[str, list[Actor]]]:
    """In one pass: by node, the reservations (ALIVE actors outside known placement groups,
    then placed bundles) and the ALIVE actors; by pool, its actors in any state."""
    known_groups = {group.pg_id for group in state.placement_groups}
    reservations: dict[str, list[_Reservation]] = {}
    alive: dict[str, list[Actor]] = {}
    members: dict[str, list[Actor]] = {}
    for actor in state.actors:
        pool = actor.pool
        if pool is not None:
            members.setdefault(pool, []).append(actor)
        node_id = actor.node_id
        if actor.state != "ALIVE" or node_id is None:
            continue
        alive.setdefault(node_id, []).append(actor)
        if actor.placement_group_id in known_groups:
            continue
        held = (pool, None) if pool else (OTHER, actor.class_name)
        reservations.setdefault(node_id, []).append((*held, actor.required))
    for group in state.placement_groups:
        if group.state == "REMOVED":  # its bundles gave their resources back
            continue
        for bundle in group.bundles:
            if bundle.node_id is not None:
                reservations.setdefault(bundle.node_id, []).append((OTHER, None, bundle.resources))
    return reservations, {node_id: tuple(found) for node_id, found in alive.items()}, members


def _allocate(
    node: Node,
    reservations: Sequence[_Reservation],
    actors: tuple[Actor, ...],
    counted: UnitCounts,
) -> tuple[Room, Room, NodeAllocation, dict[str, int]]:
    """An alive node: what it can still give, what it gives when idle, its allocation, and the
    GPU units each owner holds there. Each request is counted in units once (`rooms.room` is
    the same arithmetic for one node at a time); `counted`: the units of the amounts seen."""
    capacity = tuple(gpu_capacities(node.gpus))
    total = {key: count for key, count in as_units(node.resources_total).items() if key != GPU}
    other = dict(total)
    gpu_requests = []
    by_owner = dict.fromkeys((*POOLS, OTHER), 0)
    by_class: dict[str, int] = defaultdict(int)
    groups = 0
    for owner, class_name, resources in reservations:
        for key, value in resources.items():
            if key != GPU and (count := counted[value]) > 0:
                other[key] = other.get(key, 0) - count
        gpus = counted[resources.get(GPU, 0.0)]
        if gpus > 0:
            gpu_requests.append(gpus)
        by_owner[owner] += gpus
        if owner != OTHER or not gpus:
            continue
        if class_name is None:
            groups += gpus
        else:
            by_class[class_name] += gpus
    space = Room(
        node,
        capacity,
        tuple(pack(capacity, gpu_requests)),
        {k: max(0, c) for k, c in other.items()},
    )
    empty = Room(node, capacity, (0,) * len(capacity), total)
    allocation = NodeAllocation(
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
    return space, empty, allocation, by_owner


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


#: where an actor's state counts in an `_owner_counts` tally: alive, pending, restarting, dead
_TALLY_SLOT = {"ALIVE": 0, **dict.fromkeys(PENDING_STATES, 1), "RESTARTING": 2, "DEAD": 3}


def _owner_counts(
    members: Iterable[Actor], reserving: set[str]
) -> tuple[OwnerCounts, dict[str, OwnerCounts]]:
    """A pool's actors counted by state, with the GPUs held by those that reserve (see the
    top): all of them, and each owner's, in one pass."""
    # by owner: alive, pending, restarting, dead, GPU units held
    tallies: dict[str | None, list[int]] = {owner: [0] * 5 for owner in OWNERS}
    for actor in members:
        tally = tallies.get(actor.owner) or tallies.setdefault(actor.owner, [0] * 5)
        slot = _TALLY_SLOT.get(actor.state)
        if slot is not None:
            tally[slot] += 1
        if actor.actor_id in reserving:
            tally[4] += units(actor.gpus)

    def counts(tally: list[int]) -> OwnerCounts:
        return OwnerCounts(*tally[:4], gpus_reserved=amount(tally[4]))

    total = [sum(column) for column in zip(*tallies.values(), strict=True)]
    return counts(total), {owner: counts(tallies[owner]) for owner in OWNERS}


def _pool_status(
    spec: PoolSpec,
    members: Sequence[Actor],
    held_by_owner: Mapping[str, int],
    rooms: Sequence[Room],
    idle: Sequence[Room],
    reserving: set[str],
    invalid: Mapping[str, str],
) -> PoolStatus:
    """A pool against its target (`members`: its actors). `gpus_reserved` is what the alive
    nodes' `reserved_by` hold for the pool (`held_by_owner`, in units)."""
    total, owners = _owner_counts(members, reserving)
    request = as_units(spec.request)
    return PoolStatus(
        name=spec.name,
        target=spec.size,
        alive=total.alive,
        pending=total.pending,
        restarting=total.restarting,
        dead=total.dead,
        gpus_per_actor=spec.num_gpus,
        gpus_reserved=amount(held_by_owner.get(spec.name, 0)),
        gpus_target=amount(spec.size * units(spec.num_gpus)),
        fits_more=fits(request, rooms),
        fits_on_idle=fits(request, idle),
        concurrency=spec.concurrency,
        owners=owners,
        invalid={key: invalid[key] for key in FACTS[spec.name].keys if key in invalid},
    )
