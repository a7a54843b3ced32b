"""What a node can still give, in Ray's own arithmetic: the primitives of the GPU accounting.

Amounts are counted in Ray's fixed point (1/10000 of a unit) so that 0.1 + 0.2 is exactly 0.3.
A `Room` is one node's capacity minus what its reservations hold, with an ESTIMATE of what is
reserved on each GPU instance: the dashboard does not say where each fraction landed, so the
node's requests are packed the way Ray must have fitted them (whole requests first, then
fractions first-fit decreasing).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openrag_tui.cluster.state import Node, built

UNIT = 10_000  # Ray's fixed point: resources are counted in 1/10000 of a unit
GPU = "GPU"
_BYTES = frozenset({"memory", "object_store_memory"})
_GIB = 2**30

Units = Mapping[str, int]


def units(amount: float) -> int:
    return round(amount * UNIT)


def amount(count: int) -> float:
    return count / UNIT


def as_units(resources: Mapping[str, float]) -> dict[str, int]:
    """A request in units, without the zero amounts (they constrain nothing)."""
    return {key: count for key, value in resources.items() if (count := units(value)) > 0}


def figure(key: str, count: int) -> str:
    """An amount as a sentence writes it: `0.5`, `2`, `1.5 GiB` for memory."""
    value = amount(count)
    if key in _BYTES:
        return f"{value / _GIB:.1f} GiB"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def quantity(key: str, count: int) -> str:
    return f"{figure(key, count)} {key}"


def ordered(request: Units) -> list[str]:
    """GPU first, then CPU, then the rest by name: the order sentences name resources in."""
    return sorted(request, key=lambda key: (key != GPU, key != "CPU", key))


def describe(request: Units) -> str:
    return " and ".join(quantity(key, request[key]) for key in ordered(request))


@dataclass(frozen=True)
class Room:
    """What a node can still give: GPU instances (capacity, estimated reserved) and the rest."""

    node: Node
    gpu_capacity: tuple[int, ...]
    gpu_reserved: tuple[int, ...]
    other_free: Units
    #: what each GPU instance has left: asked for per pool and per request (11,000 times for
    #: 1,000 nodes), so derived once, when the room is made
    gpu_free: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpu_free", gpu_left(self.gpu_capacity, self.gpu_reserved))


def gpu_left(capacity: tuple[int, ...], reserved: tuple[int, ...]) -> tuple[int, ...]:
    """What each GPU instance has left (never below 0)."""
    return tuple(
        [cap - used if cap > used else 0 for cap, used in zip(capacity, reserved, strict=True)]
    )


def room_of(
    node: Node,
    capacity: tuple[int, ...],
    reserved: tuple[int, ...],
    gpu_free: tuple[int, ...],
    other_free: Units,
) -> Room:
    """A room from its figures (`gpu_free`: `gpu_left` of the GPUs'; what is left of other
    resources may go below 0: it is cut at 0), built without `__init__` (`state.built`): two
    per node per refresh, and alike nodes share their GPUs' figures."""
    return built(
        Room,
        {
            "node": node,
            "gpu_capacity": capacity,
            "gpu_reserved": reserved,
            "other_free": {key: count if count > 0 else 0 for key, count in other_free.items()},
            "gpu_free": gpu_free,
        },
    )


def idle_room(node: Node, capacity: tuple[int, ...], total: Units) -> Room:
    """What the node gives when nothing runs: every GPU instance, and `total` (the node's
    resources other than GPU, in units, each above 0: kept as given, read-only)."""
    return built(
        Room,
        {
            "node": node,
            "gpu_capacity": capacity,
            "gpu_reserved": (0,) * len(capacity),
            "other_free": total,
            "gpu_free": capacity,
        },
    )


class UnitCounts(dict[float, int]):
    """`units` of each amount, computed once per distinct amount: a refresh converts the same
    few (0.5 GPU, 1 CPU) tens of thousands of times, and `round` is most of the cost. One per
    refresh: a cluster asks for few amounts, but a long-lived one would keep every amount seen."""

    def __missing__(self, amount: float) -> int:
        self[amount] = count = units(amount)
        return count


def gpu_capacities(gpus_total: float) -> list[int]:
    """GPU instances of a node, in units: whole GPUs, plus a last partial one if declared so."""
    whole, rest = divmod(units(gpus_total), UNIT)
    return [UNIT] * whole + ([rest] if rest else [])


def pack(capacities: Sequence[int], requests: Iterable[int]) -> list[int]:
    """Units reserved per instance: whole requests take whole free GPUs, then fractions go
    first-fit decreasing. Should the estimate run out of room, a request piles onto the freest
    instances rather than vanish: Ray did place it."""
    reserved = [0] * len(capacities)
    if not capacities:
        return reserved
    wanted = sorted([count for count in requests if count > 0], reverse=True)
    every = range(len(capacities))
    for count in wanted:
        if count < UNIT:
            break  # the fractions follow, in the loop below (plain loops: ~20 per node)
        whole_free = [i for i in every if capacities[i] == UNIT and not reserved[i]]
        needed = -(-count // UNIT)
        if len(whole_free) < needed:
            whole_free = sorted(every, key=lambda i: reserved[i] - capacities[i])
        for i in whole_free[:needed]:
            take = min(UNIT, count)
            reserved[i] += take
            count -= take
    for count in wanted:
        if count >= UNIT:
            continue
        for chosen in every:
            if capacities[chosen] - reserved[chosen] >= count:
                break
        else:
            chosen = max(every, key=lambda i: capacities[i] - reserved[i])
        reserved[chosen] += count
    return reserved


def room(node: Node, reservations: Iterable[Mapping[str, float]]) -> Room:
    """A node's capacity minus what the reservations hold; an empty room for a dead node."""
    capacity = gpu_capacities(node.gpus)
    if not node.is_alive:
        return Room(node, tuple(capacity), tuple(capacity), {})
    gpu_requests = []
    other = {key: count for key, count in as_units(node.resources_total).items() if key != GPU}
    for resources in reservations:
        for key, count in as_units(resources).items():
            if key == GPU:
                gpu_requests.append(count)
            else:
                other[key] = other.get(key, 0) - count
    reserved = pack(capacity, gpu_requests)
    free = {key: max(0, count) for key, count in other.items()}
    return Room(node, tuple(capacity), tuple(reserved), free)


def copies(request: Units, space: Room) -> int:
    """How many copies of a non-empty request the room holds (exact for identical requests)."""
    limits = [space.other_free.get(key, 0) // need for key, need in request.items() if key != GPU]
    gpu = request.get(GPU, 0)
    if gpu >= UNIT:
        whole_free = sum(1 for free in space.gpu_free if free >= UNIT)
        limits.append(whole_free // -(-gpu // UNIT))
    elif gpu:
        limits.append(sum(free // gpu for free in space.gpu_free))
    return min(limits)


def copies_each(request: Units, rooms: Sequence[Room]) -> Iterator[int]:
    """`copies` of a non-empty request in each room, room by room. Rooms alike in what the
    request asks for (a cluster's nodes often are) are worked out once: `copies` depends on
    nothing else."""
    keys = [key for key in request if key != GPU]
    seen: dict[tuple[Any, ...], int] = {}
    for space in rooms:
        other = space.other_free
        shape = (space.gpu_free, *[other.get(key, 0) for key in keys])
        found = seen.get(shape)
        if found is None:
            found = seen[shape] = copies(request, space)
        yield found


def first_holding(request: Units, rooms: Sequence[Room]) -> Room | None:
    """The first room with room for a copy of the request (any room for a request of nothing),
    or None; alike rooms are worked out once (`copies_each`)."""
    if not request:
        return rooms[0] if rooms else None
    return next(
        (
            space
            for space, count in zip(rooms, copies_each(request, rooms), strict=True)
            if count > 0
        ),
        None,
    )


def fits(request: Units, rooms: Sequence[Room]) -> int | None:
    """Copies the rooms hold together; None when the request asks for nothing (no limit)."""
    return sum(copies_each(request, rooms)) if request else None
