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
from openrag_tui.cluster.gpumemory import ActorGpuMemory, gpu_memory_of, memory_warnings
from openrag_tui.cluster.pending import PendingActor, explain_pending
from openrag_tui.cluster.rooms import (
    GPU,
    Room,
    UnitCounts,
    amount,
    as_units,
    fits,
    gpu_capacities,
    gpu_left,
    idle_room,
    pack,
    room_of,
    units,
)
from openrag_tui.cluster.state import PENDING_STATES, Actor, ClusterState, Node, built
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
    the refresh before, to tell which actors died since). A 1,000-node cluster has 20,000
    actors: one pass puts each alive one on its node and sets the others aside (the pools'
    pending, restarting and dead, the pending actors); each node then counts its actors by
    kind (class, request, inside a placement group or not), a few kinds per node, and every
    per-node and per-pool figure comes from the kinds."""
    alive: dict[str, list[Actor]] = {}
    apart: list[Actor] = []  # the rest: not alive, or on no node
    for actor in state.actors:
        if actor.state == "ALIVE" and (node_id := actor.node_id) is not None:
            found = alive.get(node_id)
            if found is None:
                alive[node_id] = [actor]
            else:
                found.append(actor)
        else:
            apart.append(actor)
    bundles = _placed_bundles(state)
    known_groups = {group.pg_id for group in state.placement_groups}
    tally = _Tally()
    counted = UnitCounts()
    packed: _Packed = {}
    nodes: list[NodeAllocation] = []
    rooms: list[Room] = []
    idle: list[Room] = []
    held_by_owner = dict.fromkeys((*POOLS, OTHER), 0)  # GPU units, over the alive nodes
    reserving: set[str] = set()  # the alive nodes whose actors reserve (each counted once)
    for node in state.nodes:
        node_id = node.node_id
        if not node.is_alive:
            nodes.append(_dead_allocation(node))
            continue
        actors = alive.get(node_id, ())
        kinds = _kinds(actors, known_groups)
        if node_id not in reserving:
            reserving.add(node_id)
            tally.add_kinds(kinds, counted)
        space, empty, allocation, by_owner = _allocate(
            node, actors, kinds, bundles.get(node_id, ()), counted, packed
        )
        nodes.append(allocation)
        rooms.append(space)
        idle.append(empty)
        for owner, count in by_owner.items():
            held_by_owner[owner] += count
    for node_id, actors in alive.items():  # alive actors on a dead or unknown node
        if node_id not in reserving:
            tally.add_unplaced(actors)
    tally.add_unplaced(apart)
    refused = invalid or {}
    statuses = tuple(
        _pool_status(spec, tally, held_by_owner, rooms, idle, refused) for spec in pools
    )
    waiting = explain_pending(state, rooms, idle, [a for a in apart if a.state in PENDING_STATES])
    gpu_memory = gpu_memory_of(state, alive)
    dead = [a for a in apart if a.state == "DEAD" and a.pool is not None]
    warnings = view_warnings(
        state, statuses, now, stale_after, previous, dead=dead, gpu_requests=tally.gpu_requests
    )
    warnings += tuple(memory_warnings(gpu_memory))
    return ClusterView(state, tuple(nodes), statuses, waiting, warnings, gpu_memory)


def pack_gpus(gpus_total: float, requests: Iterable[float]) -> tuple[float, ...]:
    """Estimated GPU reserved on each instance of a node (see `NodeAllocation.gpu_slots`)."""
    reserved = pack(gpu_capacities(gpus_total), [units(value) for value in requests])
    return tuple(amount(count) for count in reserved)


# Reservations

#: actors of one kind on a node: (class name, id of the request, inside a known placement
#: group) -> [how many, the first of them]. Parse shares one request dict between the actors
#: that ask for the same (`state.normalise_required`), so a node has a few kinds.
_Kinds = dict[tuple[str, int, bool], list]


def _kinds(actors: Iterable[Actor], known_groups: set[str]) -> _Kinds:
    kinds: _Kinds = {}
    for actor in actors:
        key = (actor.class_name, id(actor.required), actor.placement_group_id in known_groups)
        found = kinds.get(key)
        if found is None:
            kinds[key] = [1, actor]
        else:
            found[0] += 1
    return kinds


#: GPU instances (units) and the sorted requests they hold -> the units reserved on each, the
#: units each has left and the amounts reserved on each (`gpu_slots`): the nodes of a cluster
#: are often alike (same GPUs, same pools' actors), so each packing is worked out once per
#: refresh
_Packed = dict[
    tuple[tuple[int, ...], tuple[int, ...]],
    tuple[tuple[int, ...], tuple[int, ...], tuple[float, ...]],
]


def _placed_bundles(state: ClusterState) -> dict[str, list[Mapping[str, float]]]:
    """By node, what the placement groups' placed bundles hold (a removed group holds
    nothing: its bundles gave their resources back)."""
    placed: dict[str, list[Mapping[str, float]]] = {}
    for group in state.placement_groups:
        if group.state == "REMOVED":
            continue
        for bundle in group.bundles:
            if bundle.node_id is not None:
                placed.setdefault(bundle.node_id, []).append(bundle.resources)
    return placed


def _allocate(
    node: Node,
    actors: Sequence[Actor],
    kinds: _Kinds,
    bundles: Sequence[Mapping[str, float]],
    counted: UnitCounts,
    packed: _Packed,
) -> tuple[Room, Room, NodeAllocation, dict[str, int]]:
    """An alive node: what it can still give, what it gives when idle, its allocation, and the
    GPU units each owner holds there. What reserves: its actors outside known placement
    groups, then its placed bundles (`rooms.room` is the same arithmetic for one node at a
    time); `counted`: the units of the amounts seen; `packed`: the packings of this refresh."""
    capacity = tuple(gpu_capacities(node.gpus))
    total = {
        key: count
        for key, value in node.resources_total.items()
        if key != GPU and (count := counted[value]) > 0
    }
    other = dict(total)
    gpu_requests: list[int] = []
    by_owner = dict.fromkeys((*POOLS, OTHER), 0)
    by_class: dict[str, int] = defaultdict(int)
    groups = 0
    for (class_name, _, in_group), (count, actor) in kinds.items():
        if in_group:  # its bundle holds its resources
            continue
        gpus = _hold(other, actor.required, count, counted)
        if gpus > 0:
            gpu_requests += [gpus] * count
        pool = actor.pool
        by_owner[pool or OTHER] += gpus * count
        if pool is None and gpus:
            by_class[class_name] += gpus * count
    for resources in bundles:
        gpus = _hold(other, resources, 1, counted)
        if gpus > 0:
            gpu_requests.append(gpus)
            by_owner[OTHER] += gpus
            groups += gpus
    gpu_requests.sort()
    key = (capacity, tuple(gpu_requests))
    packing = packed.get(key)
    if packing is None:
        reserved = tuple(pack(capacity, gpu_requests))
        slots = tuple([amount(count) for count in reserved])
        packing = packed[key] = (reserved, gpu_left(capacity, reserved), slots)
    reserved, left, slots = packing
    space = room_of(node, capacity, reserved, left, other)
    empty = idle_room(node, capacity, total)
    free = sum(left)
    resources_free = {GPU: amount(free)} if capacity else {}
    resources_free.update((key, amount(count)) for key, count in sorted(space.other_free.items()))
    allocation = built(
        NodeAllocation,
        {
            "node": node,
            "gpus_total": node.gpus,
            "gpus_reserved": amount(sum(by_owner.values())),
            "gpus_free": amount(free),
            "reserved_by": {owner: amount(count) for owner, count in by_owner.items()},
            "other_by_class": {name: amount(count) for name, count in sorted(by_class.items())},
            "placement_groups_gpus": amount(groups),
            "actors": tuple(actors),
            "gpu_slots": slots,
            "resources_free": resources_free,
        },
    )
    return space, empty, allocation, by_owner


def _hold(
    other: dict[str, int], resources: Mapping[str, float], times: int, counted: UnitCounts
) -> int:
    """Take `times` copies of a reservation's resources other than GPU off `other`; its GPU
    units (one copy's)."""
    for key, value in resources.items():
        if key != GPU and (need := counted[value]) > 0:
            other[key] = other.get(key, 0) - need * times
    return counted[resources.get(GPU, 0.0)]


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


# Pools


#: where an actor's state counts in a pool's tally: alive, pending, restarting, dead
_TALLY_SLOT = {"ALIVE": 0, **dict.fromkeys(PENDING_STATES, 1), "RESTARTING": 2, "DEAD": 3}


class _Tally:
    """The pools' actors counted by owner and state, with the GPU units held by those that
    reserve (alive on an alive node, inside a placement group too: see the top), and each
    pool's distinct GPU requests (units) among its alive actors."""

    def __init__(self) -> None:
        #: (pool, owner) -> alive, pending, restarting, dead, GPU units held
        self.rows: dict[tuple[str, str | None], list[int]] = {}
        self.gpu_requests: dict[str, set[int]] = {}

    def _row(self, pool: str, owner: str | None) -> list[int]:
        row = self.rows.get((pool, owner))
        if row is None:
            row = self.rows[pool, owner] = [0] * 5
        return row

    def add_kinds(self, kinds: _Kinds, counted: UnitCounts) -> None:
        """An alive node's actors, by kind: alive, and holding their GPUs."""
        for count, actor in kinds.values():
            pool = actor.pool
            if pool is None:
                continue
            gpus = counted[actor.required.get(GPU, 0.0)]
            row = self._row(pool, actor.owner)
            row[0] += count
            row[4] += gpus * count
            self.gpu_requests.setdefault(pool, set()).add(gpus)

    def add_unplaced(self, actors: Iterable[Actor]) -> None:
        """Actors that reserve nothing: by state only."""
        for actor in actors:
            pool = actor.pool
            if pool is None:
                continue
            row = self._row(pool, actor.owner)
            slot = _TALLY_SLOT.get(actor.state)
            if slot is not None:
                row[slot] += 1
            if actor.state == "ALIVE":
                self.gpu_requests.setdefault(pool, set()).add(units(actor.gpus))

    def counts(self, pool: str) -> tuple[OwnerCounts, dict[str, OwnerCounts]]:
        """The pool's counts over all its owners, and each owner's."""
        rows = {owner: row for (name, owner), row in self.rows.items() if name == pool}
        for owner in OWNERS:
            rows.setdefault(owner, [0] * 5)
        total = [sum(column) for column in zip(*rows.values(), strict=True)]
        return _owner_counts(total), {owner: _owner_counts(rows[owner]) for owner in OWNERS}


def _owner_counts(row: list[int]) -> OwnerCounts:
    return OwnerCounts(*row[:4], gpus_reserved=amount(row[4]))


def _pool_status(
    spec: PoolSpec,
    tally: _Tally,
    held_by_owner: Mapping[str, int],
    rooms: Sequence[Room],
    idle: Sequence[Room],
    invalid: Mapping[str, str],
) -> PoolStatus:
    """A pool against its target. `gpus_reserved` is what the alive nodes' `reserved_by`
    hold for the pool (`held_by_owner`, in units)."""
    total, owners = tally.counts(spec.name)
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
