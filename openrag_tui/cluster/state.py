"""Ray dashboard payloads parsed into a frozen `ClusterState`.

Pure: the caller fetches, this module only reads the JSON bodies as the dashboard returned them.
Only `version`, `nodes_detail` and `actors_detail` are required; without the others the state has
no physical GPUs, hostnames, placement groups, demand or autoscaler messages.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import msgspec

from openrag_tui.cluster.gcpause import gc_paused
from openrag_tui.config.pools import pool_of_class

Payloads = Mapping[str, Any]
_T = TypeVar("_T")

REQUIRED_PAYLOADS = ("version", "nodes_detail", "actors_detail")
#: why an actor died, as Ray's death cause says (ActorDeathCause / ActorDiedErrorContext.reason)
DEATH_REASONS = {
    "out_of_memory": "killed by Ray's memory monitor (out of memory)",
    "node_died": "its node died",
    "killed": "killed by a user (ray.kill)",
    "worker_died": "its worker process died",
    "owner_died": "the process that owned it ended",
    "creation_failed": "its constructor raised",
    "runtime_env_failed": "its runtime environment could not be set up",
    "unschedulable": "it could not be scheduled",
    "exited": "it exited on purpose",
    "unknown": "no cause was given",
}
_REASON_OF_CONTEXT = {
    "oom_context": "out_of_memory",
    "creation_task_failure_context": "creation_failed",
    "runtime_env_failed_context": "runtime_env_failed",
    "actor_unschedulable_context": "unschedulable",
}
_REASON_OF_DIED_ERROR = {
    "NODE_DIED": "node_died",
    "RAY_KILL": "killed",
    "WORKER_DIED": "worker_died",
    "OWNER_DIED": "owner_died",
    "OUT_OF_SCOPE": "exited",
    "REF_DELETED": "exited",
}
PENDING_STATES = frozenset({"PENDING_CREATION", "DEPENDENCIES_UNREADY"})

# Inside a placement group Ray renames a request `R` to `R_group_<pg>` (any bundle) and, when a
# bundle index is set, also `R_group_<i>_<pg>`: only the first form counts, once.
_ANY_BUNDLE = re.compile(r"^(?P<base>.+)_group_(?P<pg>[0-9a-f]+)$")
_ONE_BUNDLE = re.compile(r"^.+_group_[0-9]+_[0-9a-f]+$")
_BUNDLE_MARKER = "bundle"  # `bundle_group_<pg>` only marks membership; it is not a resource


class GpuProcess(msgspec.Struct, frozen=True, gc=False, rename={"memory_mib": "gpuMemoryUsage"}):
    """A process NVML lists on a GPU, with the memory it holds there (None: not reported).
    Read straight from a `gpus[].processesPids` entry of `/nodes?view=summary` (the names
    it is sent under: `rename`) when the entry is complete (a pid above 0)."""

    pid: Annotated[int, msgspec.Meta(gt=0)]
    memory_mib: float | None = None


class GpuDevice(
    msgspec.Struct,
    frozen=True,
    gc=False,
    rename={
        "memory_used_mib": "memoryUsed",
        "memory_total_mib": "memoryTotal",
        "utilization": "utilizationGpu",
        "processes": "processesPids",
    },
):
    """A physical GPU as NVML reports it: what the card does, not what Ray reserved. A msgspec
    struct (a 1,000-node cluster has 8,000 GPUs), read straight from a `gpus[]` entry of
    `/nodes?view=summary` when nothing in it is null or missing (else `_gpu` reads it field by
    field)."""

    index: int
    name: str = ""
    memory_used_mib: float = 0.0
    memory_total_mib: float = 0.0
    utilization: float | None = None  # percent; None when NVML did not say
    uuid: str = ""
    processes: tuple[GpuProcess, ...] = ()


@dataclass(frozen=True)
class Node:
    """A Ray node with the resources it declared (`resources_total`, Ray's logical totals)."""

    node_id: str
    ip: str
    hostname: str
    is_head: bool
    state: str
    resources_total: Mapping[str, float]
    gpu_devices: tuple[GpuDevice, ...] = ()
    gpus_reserved_reported: float | None = None  # Ray's own figure from cluster_status, if any

    @property
    def is_alive(self) -> bool:
        return self.state == "ALIVE"

    @property
    def gpus(self) -> float:
        return float(self.resources_total.get("GPU", 0.0))

    @property
    def label(self) -> str:
        """How a sentence names the node: several nodes may share one IP or hostname."""
        return f"{self.ip} {'head' if self.is_head else 'worker'}"


class Actor(msgspec.Struct, frozen=True, gc=False):
    """An actor with its request normalised to plain resource names (`GPU`, `CPU`, ...).

    A msgspec struct, not a dataclass: a 1,000-node refresh makes 20,000, and a struct is built
    in C (`gc=False`: it holds no cycle, so the collector need not track it)."""

    actor_id: str
    class_name: str
    name: str
    state: str
    node_id: str | None
    namespace: str
    required: Mapping[str, float]
    placement_group_id: str | None
    pid: int
    num_restarts: int
    death_cause: str | None
    is_detached: bool = False
    death_reason: str | None = None  # one of DEATH_REASONS, for a DEAD actor
    # From the class, once per class: a refresh asks for them per node, per pool and warning.
    #: the pool the actor belongs to, by class (OpenRAG's and the panel's own); else None
    pool: str | None = None
    #: who runs it: `openrag-tui` (our pools) or `openrag`; None outside the pools
    owner: str | None = None

    def __post_init__(self) -> None:
        """An actor made without its pool gets it from its class (parse gives it)."""
        if self.owner is None and (owned := pool_of_class(self.class_name)) is not None:
            msgspec.structs.force_setattr(self, "pool", owned[0])
            msgspec.structs.force_setattr(self, "owner", owned[1])

    @property
    def gpus(self) -> float:
        return float(self.required.get("GPU", 0.0))

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES


_NULL = msgspec.Raw(b"null")


class _ActorRow(msgspec.Struct, gc=False):
    """An `/api/v0/actors?detail=1` row as sent: only the fields the view reads (the rest of
    the row is skipped while decoding), each of them possibly null. The request stays JSON text
    (`Raw`): 20,000 actors ask for a few distinct requests, each read once."""

    actor_id: str
    class_name: str | None = None
    name: str | None = None
    state: str | None = None
    node_id: str | None = None
    ray_namespace: str | None = None
    required_resources: msgspec.Raw = _NULL
    placement_group_id: str | None = None
    pid: int | None = None
    num_restarts: int | None = None  # a string in the payload: read as a number
    death_cause: Any = None
    is_detached: bool | None = None


class _DecodedActorRow(_ActorRow, gc=False):
    """A row of a listing that came decoded already (a test's, or one only `json.loads` reads):
    its request is a value."""

    required_resources: dict[str, float] | None = None  # type: ignore[assignment]


_Row = TypeVar("_Row", bound=_ActorRow)


class _ActorResult(msgspec.Struct, Generic[_Row]):
    result: list[_Row]
    total: int | None = None
    num_after_truncation: int | None = None


class _ActorData(msgspec.Struct, Generic[_Row]):
    result: _ActorResult[_Row]


class _ActorListing(msgspec.Struct, Generic[_Row]):
    data: _ActorData[_Row]


#: the actors' body read straight into rows (lax: numbers sent as strings are numbers)
_ACTOR_LISTING = msgspec.json.Decoder(_ActorListing[_ActorRow], strict=False)
#: an actor's request, from its JSON text
_REQUEST = msgspec.json.Decoder(dict[str, float] | None, strict=False)


class _ProcessRow(msgspec.Struct, gc=False, rename={"memory_mib": "gpuMemoryUsage"}):
    """A `gpus[].processesPids` entry of `/nodes?view=summary`."""

    pid: int | None = None
    memory_mib: float | None = None


class _GpuRow(msgspec.Struct, gc=False, rename="camel"):
    """A `gpus[]` entry of `/nodes?view=summary`, as NVML's figures are sent (camelCase)."""

    index: int | None = None
    name: str | None = None
    uuid: str | None = None
    memory_used: float | None = None
    memory_total: float | None = None
    utilization_gpu: float | None = None
    processes_pids: list[_ProcessRow] | None = None


class _Raylet(msgspec.Struct, gc=False, rename="camel"):
    node_id: str | None = None


_Gpu = TypeVar("_Gpu", GpuDevice, _GpuRow)


class _NodeSummary(msgspec.Struct, Generic[_Gpu], gc=False):
    """A node's `/nodes?view=summary` entry: only what the view reads (its CPU, memory, disk
    and network figures are skipped while decoding)."""

    hostname: str | None = None
    raylet: _Raylet | None = None
    gpus: list[_Gpu] | None = None


class _SummaryData(msgspec.Struct, Generic[_Gpu]):
    summary: list[_NodeSummary[_Gpu]] | None = None


class _Summaries(msgspec.Struct, Generic[_Gpu]):
    data: _SummaryData[_Gpu] | None = None


#: the nodes' summary with its GPUs read straight into GpuDevice (Ray sends them complete)
_SUMMARIES = msgspec.json.Decoder(_Summaries[GpuDevice] | None, strict=False)
#: the same, each GPU field by field: one with a null or missing figure
_SUMMARIES_BY_FIELD = msgspec.json.Decoder(_Summaries[_GpuRow] | None, strict=False)


_NO_POOL: tuple[None, None] = (None, None)


@dataclass(frozen=True)
class Bundle:
    """One bundle of a placement group: what it holds, and where (None until placed)."""

    node_id: str | None
    resources: Mapping[str, float]
    index: int = 0

    @property
    def gpus(self) -> float:
        return float(self.resources.get("GPU", 0.0))


@dataclass(frozen=True)
class PlacementGroup:
    """A placement group: its bundles reserve resources whether or not actors run inside."""

    pg_id: str
    name: str
    state: str
    bundles: tuple[Bundle, ...]


@dataclass(frozen=True)
class ClusterState:
    """Everything one refresh learned about the cluster, at `fetched_at` (epoch seconds)."""

    ray_version: str
    nodes: tuple[Node, ...]
    actors: tuple[Actor, ...]
    placement_groups: tuple[PlacementGroup, ...]
    demand: tuple[tuple[Mapping[str, float], int], ...]
    autoscaler_messages: tuple[str, ...]
    actors_total: int
    actors_truncated: bool
    fetched_at: float
    #: sentences about optional bodies that came but could not be read (they were left out)
    unread: tuple[str, ...] = ()


@gc_paused()
def parse(payloads: Payloads, fetched_at: float) -> ClusterState:
    """Build the state from the dashboard's JSON bodies, keyed by endpoint name."""
    missing = [name for name in REQUIRED_PAYLOADS if payloads.get(name) is None]
    if missing:
        raise ValueError(f"missing dashboard payloads: {', '.join(missing)}")
    listing = _actor_listing(payloads["actors_detail"]).data.result
    actor_rows = listing.result
    actors_total = listing.total or len(actor_rows)
    actors_kept = listing.num_after_truncation or len(actor_rows)
    nodes, unread = _nodes(payloads)
    return ClusterState(
        ray_version=str(payloads["version"].get("ray_version", "")),
        nodes=nodes,
        actors=_actors(actor_rows),
        placement_groups=_placement_groups(payloads.get("placement_groups")),
        demand=_demand(payloads.get("cluster_status")),
        autoscaler_messages=_autoscaler_messages(payloads.get("cluster_events")),
        actors_total=actors_total,
        actors_truncated=actors_total > actors_kept,
        fetched_at=fetched_at,
        unread=unread,
    )


def normalise_required(raw: Mapping[str, float]) -> dict[str, float]:
    """Plain resource names from an actor's request, counting placement-group renames once."""
    if _BUNDLE_MARKER not in raw and not any("_group_" in key for key in raw):
        # most: no placement group (+ 0.0 as below: a -0.0 reads 0.0)
        return {key: float(amount) + 0.0 for key, amount in raw.items()}
    required: dict[str, float] = {}
    for key, amount in raw.items():
        if _ONE_BUNDLE.match(key):
            continue
        match = _ANY_BUNDLE.match(key)
        base = match["base"] if match else key
        if base == _BUNDLE_MARKER:
            continue
        required[base] = required.get(base, 0.0) + float(amount)
    return required


def built(cls: type[_T], fields: dict[str, Any]) -> _T:
    """An instance of a frozen dataclass from every one of its fields, without its generated
    `__init__`: that sets each field through `object.__setattr__`, five times the cost of a
    plain class, and a 1,000-node refresh builds thousands (nodes, rooms, allocations; its
    actors, GPUs and their processes, and GPU memory entries are msgspec structs). The caller gives
    what `__init__` would have set, derived fields too.
    """
    made = object.__new__(cls)
    made.__dict__.update(fields)
    return made


def _listing(body: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], int, int]:
    """Rows of a state-API listing, the cluster-wide total, and how many the server kept."""
    result = body["data"]["result"]
    rows = list(result["result"])
    total = int(result.get("total") or len(rows))
    kept = int(result.get("num_after_truncation") or len(rows))
    return rows, total, kept


def _nodes(payloads: Payloads) -> tuple[tuple[Node, ...], tuple[str, ...]]:
    """The nodes, and what could not be read of their summary (a sentence, if anything)."""
    rows, _, _ = _listing(payloads["nodes_detail"])
    summaries, unread = _summaries_by_node(payloads.get("nodes_summary"))
    reported = _reported_gpus_by_node(payloads.get("cluster_status"))
    nodes = [_node(row, summaries.get(row["node_id"]), reported) for row in rows]
    return tuple(sorted(nodes, key=_node_order)), unread


def _node(
    row: Mapping[str, Any], summary: _NodeSummary[Any] | None, reported: Mapping[str, float]
) -> Node:
    # resources_total comes from nodes_detail: /nodes?view=summary camelCases custom names.
    gpus = summary.gpus if summary is not None else None
    if gpus and type(gpus[0]) is GpuDevice:
        devices = tuple(gpus)
        for device in devices:  # as field by field: a memory of -0.0 reads 0.0
            if not device.memory_used_mib:
                msgspec.structs.force_setattr(device, "memory_used_mib", 0.0)
            if not device.memory_total_mib:
                msgspec.structs.force_setattr(device, "memory_total_mib", 0.0)
    else:
        devices = tuple([_gpu(i, gpu) for i, gpu in enumerate(gpus)]) if gpus else ()
    return built(
        Node,
        {
            "node_id": row["node_id"],
            "ip": row.get("node_ip") or "",
            "hostname": (summary and summary.hostname) or row.get("node_name") or "",
            "is_head": bool(row.get("is_head_node")),
            "state": row.get("state") or "UNKNOWN",
            "resources_total": {k: float(v) for k, v in (row.get("resources_total") or {}).items()},
            "gpu_devices": devices,
            "gpus_reserved_reported": reported.get(row["node_id"]),
        },
    )


def _node_order(node: Node) -> tuple[bool, bool, tuple[int, int, str], str]:
    """Head first, alive before dead, then by address: a stable order for packing and display."""
    return (not node.is_head, not node.is_alive, _address_key(node.ip), node.node_id)


def _address_key(ip: str) -> tuple[int, int, str]:
    """IPv4 first (read by the C library: a tenth of `ipaddress`'s time, which reads alike:
    four decimal octets, no leading zeros), then IPv6, then what is no address, by its text."""
    try:
        return (4, int.from_bytes(socket.inet_pton(socket.AF_INET, ip), "big"), "")
    except (OSError, ValueError, TypeError):  # TypeError: not text (`ipaddress` reads an int)
        pass
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return (99, 0, ip)
    return (address.version, int(address), "")


def _summaries_by_node(body: Any) -> tuple[dict[str, _NodeSummary[Any]], tuple[str, ...]]:
    """`/nodes?view=summary` entries keyed by node id (nodes on one host share an IP). The
    client leaves this body undecoded (2.3 MB for 1,000 nodes, mostly figures the view does
    not read). It is optional: one that cannot be read (not JSON, too deep, not the shape Ray
    sends) is left out, with a sentence that says so, and the nodes go without GPUs."""
    if not body:
        return {}, ()
    try:
        try:
            summaries: Any = _typed(body, _SUMMARIES, "the nodes' summary")
        except msgspec.ValidationError:  # a GPU with a null or missing figure, or worse
            summaries = _typed(body, _SUMMARIES_BY_FIELD, "the nodes' summary")
    except UnreadableBody as error:
        why = str(error)
        return {}, (f"{why[:1].upper()}{why[1:]}: {_WITHOUT_SUMMARY}",)
    except (msgspec.ValidationError, UnicodeError) as error:  # a lone surrogate as a number
        why = f"The nodes' summary is not of the shape Ray sends ({str(error)[:100]})"
        return {}, (f"{why}: {_WITHOUT_SUMMARY}",)
    if summaries is None or summaries.data is None:  # `null`: none, as before
        return {}, ()
    entries = summaries.data.summary or ()
    found = {
        entry.raylet.node_id: entry
        for entry in entries
        if entry.raylet is not None and entry.raylet.node_id
    }
    return found, ()


_WITHOUT_SUMMARY = "the nodes' physical GPUs are not shown (/nodes?view=summary)."


def _gpu(position: int, gpu: _GpuRow) -> GpuDevice:
    rows = gpu.processes_pids
    return GpuDevice(
        position if gpu.index is None else gpu.index,
        gpu.name or "",
        gpu.memory_used or 0.0,
        gpu.memory_total or 0.0,
        gpu.utilization_gpu,
        gpu.uuid or "",
        tuple([GpuProcess(row.pid, row.memory_mib) for row in rows if row.pid]) if rows else (),
    )


def _load_metrics(body: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not body:
        return {}
    status = (body.get("data") or {}).get("clusterStatus") or {}
    return status.get("loadMetricsReport") or {}


def _reported_gpus_by_node(body: Mapping[str, Any] | None) -> dict[str, float]:
    """Ray's reserved GPU per node (`usageByNode`, includes placement groups; ~5 s old)."""
    usage = _load_metrics(body).get("usageByNode") or {}
    return {
        node_id: float(resources["GPU"][0])
        for node_id, resources in usage.items()
        if resources.get("GPU")
    }


def _demand(body: Mapping[str, Any] | None) -> tuple[tuple[Mapping[str, float], int], ...]:
    """Request shapes the autoscaler could not place, with how many of each."""
    rows = _load_metrics(body).get("resourceDemand") or ()
    return tuple(({k: float(v) for k, v in shape.items()}, int(count)) for shape, count in rows)


def _autoscaler_messages(body: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The autoscaler's event texts, oldest first (they say why a request cannot be placed)."""
    if not body:
        return ()
    rows, _, _ = _listing(body)
    events = [row for row in rows if row.get("source_type") == "AUTOSCALER" and row.get("message")]
    events.sort(key=lambda row: str(row.get("time") or ""))
    return tuple(str(row["message"]) for row in events)


class UnreadableBody(ValueError):
    """A dashboard body that cannot be read at all (not JSON, or nested past what a decoder
    follows), as opposed to one of the wrong shape."""


def _typed(body: Any, decoder: msgspec.json.Decoder[_T], what: str, values: Any = None) -> _T:
    """A body read into the decoder's type: as sent (`bytes`: the dashboard client leaves the
    big bodies undecoded), read straight into the structs, or decoded already (a test's) and
    converted into `values` (default: the decoder's type). What msgspec cannot read as JSON (a
    lone surrogate, NaN) is read by `json.loads` first, as before; what that refuses too is
    UnreadableBody. `what` names the body in a sentence."""
    try:
        if isinstance(body, bytes | bytearray | memoryview):
            try:
                return decoder.decode(body)
            except msgspec.ValidationError:
                raise
            except msgspec.DecodeError:
                try:
                    body = json.loads(bytes(body))
                except ValueError:
                    raise UnreadableBody(f"{what} is not JSON") from None
        return msgspec.convert(body, decoder.type if values is None else values, strict=False)
    except RecursionError:
        raise UnreadableBody(f"{what} nests too deep") from None


def _actor_listing(body: Any) -> _ActorListing[Any]:
    """The actors' listing (12 MB for 1,000 nodes), read straight into rows."""
    return _typed(
        body, _ACTOR_LISTING, "the actors' listing", values=_ActorListing[_DecodedActorRow]
    )


def _actors(rows: list[_ActorRow]) -> tuple[Actor, ...]:
    """The rows as actors. Each distinct raw request is normalised once: the actors asking
    for the same share one dict (read-only), which lets the allocation count a node's actors
    by kind; each class's pool is looked up once."""
    requests: dict[Any, dict[str, float]] = {}  # by the request's JSON text (or items)
    as_sent = msgspec.Raw  # the type of a request read from bytes (looked up once)
    pools: dict[str, tuple[str | None, str | None]] = {}
    actors = []
    for row in rows:
        class_name = row.class_name or ""
        owned = pools.get(class_name)
        if owned is None:
            owned = pools[class_name] = pool_of_class(class_name) or _NO_POOL
        pool, owner = owned  # passed one by one: `*owned` makes the call a third slower
        raw = row.required_resources
        key = bytes(raw) if type(raw) is as_sent else tuple((raw or {}).items())
        required = requests.get(key)
        if required is None:
            required = requests[key] = normalise_required(_request(raw) or {})
        state = row.state or "UNKNOWN"
        cause = row.death_cause
        actors.append(
            Actor(
                row.actor_id,
                class_name,
                row.name or "",
                state,
                row.node_id or None,
                row.ray_namespace or "",
                required,
                row.placement_group_id or None,
                row.pid or 0,
                row.num_restarts or 0,
                _death_text(cause) if cause else None,
                bool(row.is_detached),
                death_reason(cause) if state == "DEAD" else None,
                pool,
                owner,
            )
        )
    return tuple(actors)


def _request(raw: Any) -> dict[str, float] | None:
    """An actor's request: read from its JSON text, or as it came decoded."""
    if type(raw) is not msgspec.Raw:
        return raw
    try:
        return _REQUEST.decode(raw)
    except msgspec.ValidationError as error:
        raise msgspec.ValidationError(f"{error} - at an actor's required_resources") from None
    except msgspec.DecodeError:  # what reading the body skips over unchecked: invalid UTF-8
        raise UnreadableBody("the actors' listing is not JSON") from None


def death_reason(cause: Any) -> str:
    """A DEATH_REASONS key for Ray's nested death cause (its context names the kind)."""
    if not isinstance(cause, Mapping):
        return "unknown"
    for context, reason in _REASON_OF_CONTEXT.items():
        if context in cause:
            return reason
    died = cause.get("actor_died_error_context")
    if isinstance(died, Mapping):
        message = str(died.get("error_message") or "").lower()
        if "memory" in message and ("oom" in message or "low on memory" in message):
            return "out_of_memory"
        if "exit_actor" in message or "intended_user_exit" in message:
            return "exited"
        if died.get("never_started"):  # ended before it ran: nothing was lost
            return "exited"
        return _REASON_OF_DIED_ERROR.get(str(died.get("reason") or ""), "unknown")
    return "unknown"


def _death_text(cause: Any) -> str | None:
    """The human part of Ray's nested death cause (an `error_message`), else the raw value."""
    if not cause:
        return None
    return _error_message(cause) or str(cause)


def _error_message(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    if isinstance(value.get("error_message"), str):
        return value["error_message"]
    return next(filter(None, map(_error_message, value.values())), None)


def _placement_groups(body: Mapping[str, Any] | None) -> tuple[PlacementGroup, ...]:
    if not body:
        return ()
    rows, _, _ = _listing(body)
    return tuple(_placement_group(row) for row in rows)


def _placement_group(row: Mapping[str, Any]) -> PlacementGroup:
    bundles = []
    for position, bundle in enumerate(row.get("bundles") or ()):
        bundle_id = bundle.get("bundle_id") or {}
        bundles.append(
            Bundle(
                node_id=bundle.get("node_id") or None,
                resources={k: float(v) for k, v in (bundle.get("unit_resources") or {}).items()},
                index=int(bundle_id.get("bundle_index", position)),
            )
        )
    return PlacementGroup(
        pg_id=row["placement_group_id"],
        name=row.get("name") or "",
        state=row.get("state") or "UNKNOWN",
        bundles=tuple(bundles),
    )
