"""Why an actor is pending, in one plain sentence: the dashboard has no "reason" field.

An actor is **infeasible** if no alive node could ever hold its request (a fraction below 1 must
fit on a single GPU), **waiting** if some node could but none can now; the autoscaler's own
message is attached when it quotes exactly this request.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from openrag_tui.cluster.rooms import (
    GPU,
    UNIT,
    Room,
    Units,
    as_units,
    copies_each,
    describe,
    figure,
    first_holding,
    ordered,
    quantity,
)
from openrag_tui.cluster.state import PENDING_STATES, Actor, ClusterState, PlacementGroup

_REQUEST_DICT = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class PendingActor:
    """An actor Ray has not placed, and a plain sentence saying why."""

    actor: Actor
    pool: str | None
    required: Mapping[str, float]
    reason: str  # "waiting" (some node could hold it, none now) or "infeasible" (none ever)
    detail: str
    autoscaler_message: str | None


def explain_pending(
    state: ClusterState,
    rooms: Sequence[Room],
    idle: Sequence[Room],
    candidates: Iterable[Actor],
) -> tuple[PendingActor, ...]:
    """Pending actors, infeasible ones first, each with the sentence that explains it.
    `candidates`: the state's actors that may be pending (a view sets them aside while it
    goes through the actors once)."""
    groups = {group.pg_id: group for group in state.placement_groups}
    requests = _autoscaler_requests(state.autoscaler_messages)
    pending = []
    for actor in candidates:
        if actor.state not in PENDING_STATES:  # `is_pending`, without a call per actor
            continue
        group = groups.get(actor.placement_group_id) if actor.placement_group_id else None
        reason, detail = _classify(actor, group, rooms, idle)
        message = _autoscaler_message(actor.required, requests)
        pending.append(PendingActor(actor, actor.pool, actor.required, reason, detail, message))
    pending.sort(key=lambda p: (p.reason, p.actor.class_name, p.actor.name, p.actor.actor_id))
    return tuple(pending)


def _classify(
    actor: Actor, group: PlacementGroup | None, rooms: Sequence[Room], idle: Sequence[Room]
) -> tuple[str, str]:
    if not idle:
        return "infeasible", "no node is alive"
    if group is not None:
        return _classify_in_group(group, idle)
    request = as_units(actor.required)
    never = _why_never(request, idle)
    if never:
        return "infeasible", never
    if actor.state == "DEPENDENCIES_UNREADY":
        return "waiting", "waits for its dependencies (arguments or runtime env)"
    if request:
        each = copies_each(request, idle)
        candidates = [room for room, count in zip(rooms, each, strict=True) if count > 0]
    else:
        candidates = list(rooms)
    return "waiting", _why_waiting(request, candidates)


def _classify_in_group(group: PlacementGroup, idle: Sequence[Room]) -> tuple[str, str]:
    """An actor in a placement group waits on its bundle, not on a node's free room."""
    name = f"placement group '{group.name or group.pg_id}'"
    if group.state == "REMOVED":
        return "infeasible", f"its {name} was removed"
    for bundle in group.bundles:
        never = _why_never(as_units(bundle.resources), idle)
        if never:
            return "infeasible", f"its {name} cannot be placed: a bundle {never}"
    if group.state == "CREATED":
        return "waiting", f"waits for room in its {name}"
    return "waiting", f"waits for its {name} ({group.state}) to be placed"


def _why_never(request: Units, idle: Sequence[Room]) -> str | None:
    """Why no alive node could ever hold the request, or None when one could."""
    if first_holding(request, idle) is not None:
        return None
    for key in ordered(request):
        need = request[key]
        best, _ = _best(key, need, idle)
        if best >= need:
            continue
        if key == GPU and need < UNIT:
            if not best:
                return f"needs {quantity(key, need)} on one GPU; no node has a GPU"
            largest = figure(key, best)
            return f"needs {quantity(key, need)} on one GPU; the largest GPU has {largest}"
        if not best:
            return f"needs {quantity(key, need)}; no node has {key}"
        return f"needs {quantity(key, need)}; the largest node has {figure(key, best)}"
    return f"needs {describe(request)}; no single node has all of it"


def _why_waiting(request: Units, candidates: Sequence[Room]) -> str:
    """Which resource is short now on the nodes that could hold the request."""
    fitting = first_holding(request, candidates)
    if fitting is not None:
        return f"fits on {fitting.node.label} now; Ray has not placed it yet"
    short = []
    for key in ordered(request):
        need = request[key]
        best, room = _best(key, need, candidates)
        if best < need:
            short.append(f"needs {_shortfall(key, need, best)} ({room.node.label})")
    return "; ".join(short) or f"needs {describe(request)}; no node has all of it free at once"


def _shortfall(key: str, need: int, best: int) -> str:
    """The need and the best offer, worded for how the resource is counted."""
    most = figure(key, best)
    if key != GPU:
        return f"{quantity(key, need)}; most free on one node is {most}"
    if need < UNIT:
        return f"{quantity(key, need)} on one GPU; most free on one GPU is {most}"
    plural = "" if best == UNIT else "s"
    return f"{quantity(key, need)}; most free on one node is {most} whole GPU{plural}"


def _offer(key: str, need: int, room: Room) -> int:
    """What a room offers toward one resource of a request, in units comparable to `need`."""
    if key != GPU:
        return room.other_free.get(key, 0)
    if need >= UNIT:
        return UNIT * sum(1 for free in room.gpu_free if free >= UNIT)
    return max(room.gpu_free, default=0)


def _best(key: str, need: int, rooms: Sequence[Room]) -> tuple[int, Room]:
    """The room offering the most toward `key` (the first one on ties). Alike nodes share
    their GPUs' figures (`allocation`): a GPU offer is worked out once per figures."""
    if not rooms:
        raise ValueError("no room to offer")
    offers: dict[tuple[int, ...], int] = {}
    best, chosen = -1, rooms[0]
    for room in rooms:
        if key == GPU:
            offer = offers.get(room.gpu_free)
            if offer is None:
                offer = offers[room.gpu_free] = _offer(key, need, room)
        else:
            offer = room.other_free.get(key, 0)
        if offer > best:
            best, chosen = offer, room
    return best, chosen


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
        return as_units({str(key): float(amount) for key, amount in value.items()})
    except (ValueError, TypeError, SyntaxError, AttributeError):
        return None


def _autoscaler_message(required: Mapping[str, float], found: Sequence[tuple]) -> str | None:
    """The latest autoscaler message quoting exactly this request."""
    request = as_units(required)
    return next((message for shape, message in reversed(found) if shape == request), None)
