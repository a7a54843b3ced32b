"""GPU memory per actor, from NVML's per-process figures (`gpus[].processesPids` of
`/nodes?view=summary`) matched to actors by pid.

Pure. Operators size `RAY_NUM_GPUS` from what one actor really holds, so each actor gets its
measured memory beside its share (the GPUs it reserves × the memory of its GPU). Where NVML
reported nothing (declared GPUs, no driver) the memory is unknown, never a guess (Ray once
derived it from the memory bus, ray #61456). An actor that reserves a GPU but whose process is on
none may have fallen back to the CPU (OpenRAG's marker workers did, their #451); that is only
said when every process on the node's GPUs is an actor's, since a worker's child process
(a process pool) holds memory under its own pid.

A 1,000-node cluster has 20,000 alive actors: what an actor's entry needs of its node (the NVML
processes by pid) is gathered once per node (`NodeGpus`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from openrag_tui.cluster.state import Actor, ClusterState, GpuDevice, GpuProcess, Node

#: measured memory above the share by more than this fraction is "over" (NVML rounds to MiB)
OVER_TOLERANCE = 0.02
MEASURED, UNKNOWN, NO_GPU, NOT_GPU = "measured", "unknown", "no-gpu", "not-gpu"


class ActorGpuMemory(msgspec.Struct, frozen=True, gc=False):
    """What one alive actor holds on its node's GPUs, and its reserved share. A msgspec struct
    (built in C; `gc=False`: no cycles): a 1,000-node refresh makes 20,000."""

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
    # Derived from the figures above (`share_of`) by whoever makes the entry (`NodeGpus`, once
    # per kind of actor on a node): `status --json` and the panel read them for each actor.
    #: its reserved share of GPU memory, in MiB (2 GPUs: twice its GPU's memory)
    share_mib: float | None
    #: it holds more than its share
    over_share: bool


def share_of(
    reserved: float, gpu_memory_mib: float | None, memory_mib: float | None
) -> tuple[float | None, bool]:
    """The share of GPU memory the actor reserves (None: unknown), and whether it holds more."""
    if gpu_memory_mib is None or reserved <= 0:
        return None, False
    share = reserved * gpu_memory_mib
    return share, memory_mib is not None and memory_mib > share * (1 + OVER_TOLERANCE)


#: the GPUs a pid is on, each with what NVML says the process holds there
_On = list[tuple[GpuDevice, GpuProcess]]
#: an entry's figures: memory, status, GPU memory, devices, share, over its share (`share_of`)
_Figures = tuple[float | None, str, float | None, tuple[int, ...], float | None, bool]


class NodeGpus:
    """A node's NVML processes by pid and its alive actors: all that an actor's figures need
    besides its own pid and request. Made once per node per refresh."""

    __slots__ = ("actors", "devices", "first_memory", "node_id", "off", "on_gpus", "unattributed")

    def __init__(self, node: Node, actors: Iterable[Actor]) -> None:
        self.node_id = node.node_id
        self.actors = tuple(actors)
        self.devices = node.gpu_devices
        #: the memory of the node's first GPU, the share's base for an actor on none (0: none)
        self.first_memory = self.devices[0].memory_total_mib if self.devices else 0.0
        on_gpus: dict[int, _On] = {}
        for device in self.devices:
            for process in device.processes:
                on_gpus.setdefault(process.pid, []).append((device, process))
        self.on_gpus = on_gpus
        #: a process on the GPUs is no actor's (a child, or vLLM): an actor on none may be it
        self.unattributed = bool(on_gpus) and not on_gpus.keys() <= {a.pid for a in self.actors}
        #: by the id of an actor's request (parse shares one dict between the actors asking
        #: for the same; they hold it): the GPUs it reserves and its figures off the GPUs
        self.off: dict[int, tuple[float, _Figures]] = {}

    def off_gpus(self, actor: Actor) -> tuple[float, _Figures]:
        """The GPUs the actor reserves and its figures, its process being on none of the
        node's GPUs as NVML lists them: the same for every such actor asking for as much (one
        per request, worked out once)."""
        alike = self.off.get(id(actor.required))
        if alike is None:
            reserved = actor.gpus
            if reserved <= 0:
                memory, status = 0.0, NOT_GPU  # reserves none, holds none: not a GPU actor
            elif not self.devices or self.unattributed:
                memory, status = None, UNKNOWN  # no NVML data, or a child process may hold it
            else:
                memory, status = 0.0, NO_GPU
            gpu_memory = self.first_memory or None
            share, over = share_of(reserved, gpu_memory, memory)
            alike = (reserved, (memory, status, gpu_memory, (), share, over))
            self.off[id(actor.required)] = alike
        return alike

    def add_entries(self, found: dict[str, ActorGpuMemory]) -> None:
        """Each of the node's actors' entries, by actor id (one loop: 20,000 for 1,000 nodes)."""
        node_id, on_gpus, off = self.node_id, self.on_gpus, self.off
        for actor in self.actors:
            pid = actor.pid
            on = on_gpus.get(pid) if pid else None
            if on:
                reserved = actor.gpus
                figures = _on_gpus(on, reserved)
            else:  # the cache read here: a call per actor would cost a tenth of the loop
                alike = off.get(id(actor.required))
                reserved, figures = alike if alike is not None else self.off_gpus(actor)
            memory, status, gpu_memory, devices, share, over = figures
            found[actor.actor_id] = ActorGpuMemory(
                actor.actor_id,
                actor.name or actor.actor_id[:8],
                actor.pool,
                actor.owner,
                node_id,
                reserved,
                devices,
                memory,
                gpu_memory,
                status,
                share,
                over,
            )


def _on_gpus(on: _On, reserved: float) -> _Figures:
    """The figures of an actor whose process NVML lists on some of the node's GPUs."""
    held = [process.memory_mib for _, process in on]
    memory = None if None in held else sum(held)  # type: ignore[arg-type]
    gpu_memory = on[0][0].memory_total_mib or None
    devices = tuple(sorted({device.index for device, _ in on}))
    status = UNKNOWN if memory is None else MEASURED
    return (memory, status, gpu_memory, devices, *share_of(reserved, gpu_memory, memory))


def gpu_memory_of(
    state: ClusterState, alive: Mapping[str, Iterable[Actor]]
) -> dict[str, ActorGpuMemory]:
    """The GPU memory of the alive actors on a node the state lists, by actor id (`alive`: by
    node id, in the state's order)."""
    nodes = {node.node_id: node for node in state.nodes}
    found: dict[str, ActorGpuMemory] = {}
    for node_id, actors in alive.items():
        node = nodes.get(node_id)
        if node is not None:
            NodeGpus(node, actors).add_entries(found)
    return found


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
