"""The pools sized from GPU memory: the deployment guide's arithmetic, done per GPU.

Pure. An indexer or marker actor holds some GPU memory (measured by NVML over the history, or
given); each GPU offers its memory less what processes outside our pools hold (vLLM, the RAG
API) and a reserve. Markers are placed first (`MARKER_POOL_SIZE`, one per GPU node in turn),
indexers fill what remains. Ray only counts shares, so a share is chosen so that Ray places
exactly the actors that fit in memory: `1/k` rounded down to Ray's fixed point when k fit
(with a reserve, `0.25` would let a fourth actor onto a GPU with room for three; `0.3333`
does not).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from openrag_tui.cluster.gpumemory import MEASURED, ActorGpuMemory
from openrag_tui.cluster.rooms import UNIT, amount, as_units, copies, room, units
from openrag_tui.cluster.state import ClusterState, Node
from openrag_tui.config.pools import FACTS, OURS, PoolSpec

MIB_PER_GB = 1024.0
#: the smallest marker share: a marker needs some GPU share to be given a GPU at all
MIN_SHARE = 100  # 0.01 GPU, OpenRAG's default MARKER_NUM_GPUS
#: with more actors than this per GPU, 1/k rounded down lets k+1 in: not planned
MAX_PER_GPU = 99


class PlanRefused(ValueError):
    """The plan cannot be made: an input is missing or makes no sense (one sentence)."""


@dataclass(frozen=True)
class Given:
    """What the operator said (GB of GPU memory); None where the cluster's figure is used."""

    indexer_gb: float | None = None
    marker_gb: float | None = None
    gpu_gb: float | None = None
    reserve_gb: float = 0.0


@dataclass(frozen=True)
class Memory:
    """GPU memory of one actor of a pool: MiB, and where the figure comes from."""

    mib: float | None
    source: str  # "given", "measured" or "unknown"


@dataclass(frozen=True)
class GpuPlan:
    """One GPU instance Ray declared: its memory, what is taken, and what it will hold."""

    node_id: str
    node: str  # the node's label
    index: int
    memory_mib: float
    memory_source: str  # "nvml" or "given"
    outside_mib: float  # held by processes outside our pools
    reserve_mib: float
    markers: int
    indexers: int
    capacity: int  # Ray units (a declared partial GPU is less than UNIT)

    @property
    def free_mib(self) -> float:
        return self.memory_mib - self.outside_mib - self.reserve_mib


@dataclass(frozen=True)
class Fit:
    """With the recommended values, how many actors Ray could place now and how many wait."""

    size: int
    run: int

    @property
    def wait(self) -> int:
        return self.size - self.run


@dataclass(frozen=True)
class PoolPlan:
    """What the planner recommends."""

    current: Mapping[str, str]
    recommended: Mapping[str, str]
    reasons: tuple[str, ...]
    gpus: tuple[GpuPlan, ...]
    memory: Mapping[str, Memory]
    fit: Mapping[str, Fit]
    notes: tuple[str, ...] = field(default=())

    @property
    def changes(self) -> dict[str, str]:
        """The recommended values that differ from the .env's."""
        return {k: v for k, v in self.recommended.items() if self.current.get(k) != v}


def share_text(count: int) -> str:
    """A share as it is written to the .env: `0.25`, `0.3333`, `1`."""
    return f"{amount(count):.4f}".rstrip("0").rstrip(".")


def gb(mib: float) -> str:
    return f"{mib / MIB_PER_GB:.1f} GB"


def measured_memory(
    gpu_memory: Mapping[str, ActorGpuMemory],
    pool: str,
    history: Mapping[str, Sequence[float]] | None = None,
) -> float | None:
    """What one actor of the pool holds (MiB): the median over the history's samples of its
    measured actors when given (actor id → samples), else over the instant's figures."""
    actors = [
        entry
        for entry in gpu_memory.values()
        if entry.pool == pool and entry.status == MEASURED and entry.memory_mib is not None
    ]
    samples: list[float] = []
    for entry in actors:
        samples += (history or {}).get(entry.actor_id) or [entry.memory_mib or 0.0]
    return statistics.median(samples) if samples else None


def plan_pools(
    state: ClusterState,
    specs: Mapping[str, PoolSpec],
    given: Given,
    measured: Mapping[str, float | None],
) -> PoolPlan:
    """The recommended sizes and shares of both pools; PlanRefused when it cannot be made."""
    _check(given)
    indexer, marker = specs["indexer"], specs["marker"]
    memory = {
        "indexer": _memory(given.indexer_gb, measured.get("indexer")),
        "marker": _memory(given.marker_gb, measured.get("marker")),
    }
    if memory["indexer"].mib is None:
        raise PlanRefused(
            "the GPU memory of an indexer is unknown (NVML measured no indexer actor): "
            "give it with --indexer-gb"
        )
    gpus = _gpus(state, given)
    if not gpus:
        raise PlanRefused("no alive node declares a GPU: there is nothing to plan")
    reasons: list[str] = []
    notes: list[str] = []
    marker_mib = memory["marker"].mib
    if marker_mib is not None and marker.size:
        gpus = _place_markers(gpus, marker.size, marker_mib, notes)
    indexer_mib = memory["indexer"].mib
    per_gpu = [_fit_count(gpu.free_mib - gpu.markers * (marker_mib or 0.0), indexer_mib)
               for gpu in gpus]  # fmt: skip
    alone = [_fit_count(gpu.free_mib, indexer_mib) for gpu in gpus]  # without markers
    tightest = min([count for count in alone if count] or [0])
    if not tightest:
        raise PlanRefused(
            f"no GPU has room for an indexer of {gb(indexer_mib)} "
            f"({_room_words(gpus[0], None)}): lower --reserve-gb or check the figures"
        )
    tightest = min(tightest, MAX_PER_GPU)
    share = UNIT // tightest
    marker_share = _marker_share(gpus, per_gpu, share, marker, marker_mib)
    placed = []
    for gpu, count in zip(gpus, per_gpu, strict=True):
        ray_room = max(0, gpu.capacity - gpu.markers * marker_share) // share
        placed.append(_with(gpu, indexers=min(count, ray_room)))
    gpus = placed
    size = sum(gpu.indexers for gpu in gpus)
    recommended = {
        indexer.size_key: str(size),
        FACTS["indexer"].gpus_key: share_text(share),
        FACTS["marker"].gpus_key: share_text(marker_share),
        marker.size_key: str(marker.size),
    }
    example = next(gpu for gpu, count in zip(gpus, alone, strict=True) if count == tightest)
    reasons.insert(
        0,
        (
            f"RAY_NUM_GPUS={share_text(share)}: an indexer holds {gb(indexer_mib)} "
            f"({memory['indexer'].source}); {_room_words(example, None)} holds "
            f"{tightest}, so 1/{tightest} of a GPU, rounded down so that Ray places no more"
        ),
    )
    reasons.insert(1, f"RAY_POOL_SIZE={size}: {_count_words(gpus)}")
    marker_key = FACTS["marker"].gpus_key
    if not marker.size:
        reasons.append(f"{marker_key}={share_text(marker_share)} (unchanged): no marker pool")
    elif marker_mib is None:
        reasons.append(
            f"{marker_key}={share_text(marker_share)} (unchanged): a marker's GPU memory is "
            "unknown (not measured, no --marker-gb), so markers are left out of the memory"
        )
    else:
        beside = min((g.indexers for g in gpus if g.markers), default=0)
        reasons.append(
            f"{marker_key}={share_text(marker_share)}: a marker holds {gb(marker_mib)} "
            f"({memory['marker'].source}); its GPU keeps room for {beside} indexer(s) beside it"
        )
    reasons.append(
        f"{marker.size_key}={marker.size} (unchanged): "
        + ("markers are placed first, one per GPU node in turn" if marker.size else "no markers")
    )
    notes += _heterogeneous_notes(gpus, alone, tightest)
    current = {
        indexer.size_key: str(indexer.size),
        FACTS["indexer"].gpus_key: share_text(units(indexer.num_gpus)),
        FACTS["marker"].gpus_key: share_text(units(marker.num_gpus)),
        marker.size_key: str(marker.size),
    }
    fit = _fit_now(state, indexer, marker, size, share, marker_share)
    return PoolPlan(current, recommended, tuple(reasons), tuple(gpus), memory, fit, tuple(notes))


def _check(given: Given) -> None:
    for flag, value in (
        ("--indexer-gb", given.indexer_gb),
        ("--marker-gb", given.marker_gb),
        ("--gpu-gb", given.gpu_gb),
    ):
        if value is not None and not value > 0:
            raise PlanRefused(f"{flag} must be a number of GB greater than 0 (got {value:g})")
    if not given.reserve_gb >= 0:
        raise PlanRefused(f"--reserve-gb must be 0 or more (got {given.reserve_gb:g})")


def _memory(given_gb: float | None, measured_mib: float | None) -> Memory:
    if given_gb is not None:
        return Memory(given_gb * MIB_PER_GB, "given")
    if measured_mib is not None and measured_mib > 0:
        return Memory(measured_mib, "measured")
    return Memory(None, "unknown")


def _gpus(state: ClusterState, given: Given) -> list[GpuPlan]:
    """Every GPU instance of the alive nodes, with its memory and what is held outside."""
    ours = {
        actor.pid
        for actor in state.actors
        if actor.state == "ALIVE" and actor.pool and actor.owner == OURS and actor.pid
    }
    found = []
    missing = []
    for node in state.nodes:
        if not node.is_alive or node.gpus <= 0:
            continue
        for index, capacity in enumerate(_capacities(node)):
            devices = [d for d in node.gpu_devices if d.index == index and d.memory_total_mib > 0]
            if devices:
                device = devices[0]
                total, source = device.memory_total_mib, "nvml"
                outside = sum(p.memory_mib or 0.0 for p in device.processes if p.pid not in ours)
            elif given.gpu_gb is not None:
                total, source, outside = given.gpu_gb * MIB_PER_GB, "given", 0.0
            else:
                missing.append(node.label)
                continue
            reserve = given.reserve_gb * MIB_PER_GB
            found.append(GpuPlan(node.node_id, node.label, index, total, source, outside,
                                 reserve, 0, 0, capacity))  # fmt: skip
    if missing:
        raise PlanRefused(
            f"the memory of the GPUs of {', '.join(sorted(set(missing)))} is not reported "
            "(no NVML): give it with --gpu-gb"
        )
    return found


def _capacities(node: Node) -> list[int]:
    whole, rest = divmod(units(node.gpus), UNIT)
    return [UNIT] * whole + ([rest] if rest else [])


def _fit_count(free_mib: float, per_actor_mib: float) -> int:
    return max(0, int(free_mib // per_actor_mib)) if free_mib > 0 else 0


def _place_markers(
    gpus: list[GpuPlan], count: int, marker_mib: float, notes: list[str]
) -> list[GpuPlan]:
    """One marker per GPU node in turn, each on its node's freest GPU."""
    by_node: dict[str, list[int]] = {}
    for i, gpu in enumerate(gpus):
        by_node.setdefault(gpu.node_id, []).append(i)
    placed = list(gpus)
    left = count
    order = list(by_node.values())
    unplaced = 0
    while left:
        progressed = False
        for indexes in order:
            if not left:
                break
            room_of = {i: placed[i].free_mib - placed[i].markers * marker_mib for i in indexes}
            best = max(indexes, key=lambda i: (room_of[i], -i))
            if room_of[best] >= marker_mib:
                placed[best] = _with(placed[best], markers=placed[best].markers + 1)
                left -= 1
                progressed = True
        if not progressed:
            unplaced = left
            break
    if unplaced:
        notes.append(
            f"{unplaced} of {count} markers of {gb(marker_mib)} find no GPU with room: "
            "they would wait (lower MARKER_POOL_SIZE or --reserve-gb)"
        )
    return placed


def _marker_share(
    gpus: Sequence[GpuPlan],
    per_gpu: Sequence[int],
    share: int,
    marker: PoolSpec,
    marker_mib: float | None,
) -> int:
    """The marker's share: what its GPU's share leaves once the indexers that fit beside it
    have theirs (so Ray places exactly those), at least its memory's part and MIN_SHARE."""
    if marker_mib is None or not marker.size:
        return units(marker.num_gpus)
    candidates = []
    for gpu, count in zip(gpus, per_gpu, strict=True):
        if gpu.markers:
            left = gpu.capacity - min(count, MAX_PER_GPU) * share
            candidates.append(left // gpu.markers)
    if not candidates:  # no marker could be placed: its memory's part of the first GPU
        return max(MIN_SHARE, min(UNIT, -(-round(marker_mib * UNIT) // round(gpus[0].memory_mib))))
    return min(UNIT, max(MIN_SHARE, min(candidates)))


def _with(gpu: GpuPlan, **changes: int) -> GpuPlan:
    return replace(gpu, **changes)


def _room_words(gpu: GpuPlan, marker_mib: float | None) -> str:
    taken = []
    if gpu.outside_mib:
        taken.append(f"{gb(gpu.outside_mib)} used outside our pools")
    if gpu.reserve_mib:
        taken.append(f"{gb(gpu.reserve_mib)} reserved")
    if gpu.markers and marker_mib:
        taken.append(f"{gpu.markers} marker(s) of {gb(marker_mib)}")
    less = f" less {', '.join(taken)}" if taken else ""
    return f"a {gb(gpu.memory_mib)} GPU{less}"


def _count_words(gpus: Sequence[GpuPlan]) -> str:
    counts: dict[int, int] = {}
    for gpu in gpus:
        counts[gpu.indexers] = counts.get(gpu.indexers, 0) + 1
    nodes = len({gpu.node_id for gpu in gpus})
    parts = [
        f"{per} on each of {n} GPU{'s' if n > 1 else ''}" if n > 1 else f"{per} on 1 GPU"
        for per, n in sorted(counts.items(), reverse=True)
    ]
    return f"{' and '.join(parts)} ({nodes} node{'s' if nodes > 1 else ''})"


def _heterogeneous_notes(
    gpus: Sequence[GpuPlan], per_gpu: Sequence[int], tightest: int
) -> list[str]:
    """Where one share cannot match every GPU: bigger ones are under-used, full ones at risk."""
    notes = []
    for gpu, count in zip(gpus, per_gpu, strict=True):
        where = f"GPU {gpu.index} of {gpu.node}"
        if not count:
            notes.append(
                f"{where} has no room for an indexer, but Ray may still place one there "
                "(it counts shares, not memory)"
            )
        elif count > gpu.indexers and not gpu.markers and count > tightest:
            notes.append(
                f"{where} has room for {count} but one share for every GPU lets it hold "
                f"{gpu.indexers}"
            )
    return notes


def _fit_now(
    state: ClusterState,
    indexer: PoolSpec,
    marker: PoolSpec,
    size: int,
    share: int,
    marker_share: int,
) -> dict[str, Fit]:
    """Markers then indexers of the recommended shares, placed into the cluster as it is with
    our pools' actors taken out (they are what is being planned)."""
    held: dict[str, list[Mapping[str, float]]] = {}
    for actor in state.actors:
        mine = actor.pool and actor.owner == OURS
        if actor.state == "ALIVE" and actor.node_id and not mine:
            held.setdefault(actor.node_id, []).append(actor.required)
    for group in state.placement_groups:
        if group.state != "REMOVED":
            for bundle in group.bundles:
                if bundle.node_id:
                    held.setdefault(bundle.node_id, []).append(bundle.resources)
    nodes = [node for node in state.nodes if node.is_alive]
    marker_request = {"GPU": amount(marker_share), "CPU": marker.num_cpus}
    markers_run = 0
    for _ in range(marker.size):
        placed = False
        for node in sorted(nodes, key=lambda n: _markers_on(held, n, marker_request)):
            if copies(as_units(marker_request), room(node, held.get(node.node_id, ()))):
                held.setdefault(node.node_id, []).append(marker_request)
                markers_run += 1
                placed = True
                break
        if not placed:
            break
    indexer_request = as_units({"GPU": amount(share), "CPU": indexer.num_cpus})
    space = sum(copies(indexer_request, room(n, held.get(n.node_id, ()))) for n in nodes)
    return {
        "indexer": Fit(size, min(size, space)),
        "marker": Fit(marker.size, markers_run),
    }


def _markers_on(
    held: Mapping[str, Iterable[Mapping[str, float]]], node: Node, request: Mapping[str, float]
) -> int:
    return sum(1 for item in held.get(node.node_id, ()) if item is request)
