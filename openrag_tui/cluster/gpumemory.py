"""GPU memory per actor, from NVML's per-process figures (`gpus[].processesPids` of
`/nodes?view=summary`) matched to actors by pid.

Pure. Operators size `RAY_NUM_GPUS` from what one actor really holds, so each actor gets its
measured memory beside its share (the GPUs it reserves × the memory of its GPU). Where NVML
reported nothing (declared GPUs, no driver) the memory is unknown, never a guess (Ray once
derived it from the memory bus, ray #61456). An actor that reserves a GPU but whose process is on
none may have fallen back to the CPU (OpenRAG's marker workers did, their #451); that is only
said when every process on the node's GPUs is an actor's, since a worker's child process
(a process pool) holds memory under its own pid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from openrag_tui.cluster.state import Actor, ClusterState, GpuDevice, GpuProcess, Node, built

#: measured memory above the share by more than this fraction is "over" (NVML rounds to MiB)
OVER_TOLERANCE = 0.02
MEASURED, UNKNOWN, NO_GPU, NOT_GPU = "measured", "unknown", "no-gpu", "not-gpu"


@dataclass(frozen=True)
class ActorGpuMemory:
    """What one alive actor holds on its node's GPUs, and its reserved share."""

    actor_id: str
    name: str
    pool: str | None
    owner: str | None  # `openrag-tui` or `openrag` for a pool actor
    node_id: str
    reserved: float  # GPUs it reserves (Ray's logical figure)
    devices: tuple[int, ...]  # indexes of the GPUs its process is on
    memory_mib: float | None  # what NVML says it holds (over its devices); None: unknown
    gpu_memory_mib: float | None  # the memory of its GPU (or of the node's first)
    status: str  # MEASURED, UNKNOWN, NO_GPU (reserves one, on none), NOT_GPU (reserves none)
    # Derived once (`_share`): `status --json` and the panel read them for every actor.
    #: its reserved share of GPU memory, in MiB (2 GPUs: twice its GPU's memory)
    share_mib: float | None = field(init=False, repr=False, compare=False)
    #: it holds more than its share
    over_share: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        share, over = _share(self.reserved, self.gpu_memory_mib, self.memory_mib)
        object.__setattr__(self, "share_mib", share)
        object.__setattr__(self, "over_share", over)


def _share(
    reserved: float, gpu_memory_mib: float | None, memory_mib: float | None
) -> tuple[float | None, bool]:
    """The share of GPU memory the actor reserves (None: unknown), and whether it holds more."""
    if gpu_memory_mib is None or reserved <= 0:
        return None, False
    share = reserved * gpu_memory_mib
    return share, memory_mib is not None and memory_mib > share * (1 + OVER_TOLERANCE)


def actor_gpu_memory(state: ClusterState) -> dict[str, ActorGpuMemory]:
    """Every alive actor's GPU memory, keyed by actor id."""
    nodes = {node.node_id: node for node in state.nodes}
    alive_by_node: dict[str, list[Actor]] = {}
    for actor in state.actors:
        if actor.state == "ALIVE" and actor.node_id in nodes:
            alive_by_node.setdefault(actor.node_id, []).append(actor)
    found = {}
    for node_id, alive in alive_by_node.items():
        node = nodes[node_id]
        on_gpus = _processes_by_pid(node)
        unattributed = not on_gpus.keys() <= {actor.pid for actor in alive}
        for actor in alive:
            on = on_gpus.get(actor.pid, _ON_NONE) if actor.pid else _ON_NONE
            found[actor.actor_id] = _of(actor, node, on, unattributed)
    return found


_ON_NONE: list[tuple[GpuDevice, GpuProcess]] = []


def _processes_by_pid(node: Node) -> dict[int, list[tuple[GpuDevice, GpuProcess]]]:
    """Each pid NVML lists on the node's GPUs, with the GPUs it is on (one pass per node)."""
    by_pid: dict[int, list[tuple[GpuDevice, GpuProcess]]] = {}
    for device in node.gpu_devices:
        for process in device.processes:
            by_pid.setdefault(process.pid, []).append((device, process))
    return by_pid


def _of(
    actor: Actor, node: Node, on: list[tuple[GpuDevice, GpuProcess]], unattributed: bool
) -> ActorGpuMemory:
    """`on`: the actor's process on the node's GPUs; `unattributed`: whether a process on them
    is no actor's (a child, or vLLM). Built without `__init__` (`state.built`): one per actor."""
    devices = node.gpu_devices
    gpu_memory = (on[0][0] if on else devices[0]).memory_total_mib if devices else None
    reserved = actor.gpus
    memory: float | None = None
    if not on and reserved <= 0:
        status, memory = NOT_GPU, 0.0  # reserves none, holds none: not a GPU actor
    elif not devices:
        status = UNKNOWN
    elif on:
        held = [process.memory_mib for _, process in on]
        memory = None if any(value is None for value in held) else sum(held)  # type: ignore[misc]
        status = MEASURED if memory is not None else UNKNOWN
    elif unattributed:
        status = UNKNOWN  # a child process of some actor may hold its memory
    else:
        status, memory = NO_GPU, 0.0
    share, over = _share(reserved, gpu_memory or None, memory)
    return built(
        ActorGpuMemory,
        {
            "actor_id": actor.actor_id,
            "name": actor.name or actor.actor_id[:8],
            "pool": actor.pool,
            "owner": actor.owner,
            "node_id": node.node_id,
            "reserved": reserved,
            "devices": tuple(sorted({device.index for device, _ in on})) if on else (),
            "memory_mib": memory,
            "gpu_memory_mib": gpu_memory or None,
            "status": status,
            "share_mib": share,
            "over_share": over,
        },
    )


def memory_warnings(
    found: Mapping[str, ActorGpuMemory], measured: Mapping[str, float] | None = None
) -> list[str]:
    """A line per pool actor over its share or on no GPU. `measured` may give each actor's
    maximum over the history instead of the instant's figure."""
    said: list[tuple[tuple[str, str], str]] = []  # (pool, name): the order of the lines
    for entry in found.values():  # thousands: only those with something to say are sorted
        if entry.pool is None:
            continue
        held = (measured or {}).get(entry.actor_id, entry.memory_mib)
        share = entry.share_mib
        if entry.status == NO_GPU:
            said.append(
                (
                    (entry.pool, entry.name),
                    f"{entry.pool} actor {entry.name} reserves {entry.reserved:g} GPU but its "
                    "process is on no GPU: it may be running on the CPU.",
                )
            )
        elif held is not None and share is not None and held > share * (1 + OVER_TOLERANCE):
            said.append(
                (
                    (entry.pool, entry.name),
                    f"{entry.pool} actor {entry.name} holds {gib(held)} of GPU memory, more "
                    f"than its share ({entry.reserved:g} × {gib(entry.gpu_memory_mib)} = "
                    f"{gib(share)}).",
                )
            )
    said.sort(key=lambda pair: pair[0])
    return [line for _, line in said]


def gib(mib: float | None) -> str:
    """MiB as GiB for a sentence or a cell; `?` when unknown."""
    return "?" if mib is None else f"{mib / 1024:.1f} GiB"
