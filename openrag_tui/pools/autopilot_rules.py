"""The autopilot's decisions as plain data: one pool, one look, at most one resize.

No Ray here. A pool grows while files wait and the next actors fit the GPU budget and the
cluster; it shrinks towards its minimum once no file has waited for the idle period, never
below the actors that are busy (the supervisor drains retirees first). A size the autopilot did
not set is an operator's hand resize: it holds until the backlog changes (a batch starts or
ends), then the autopilot follows the backlog again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    minimum: int
    maximum: int | None  # None: the budget and the cluster are the only limits
    gpu_budget: float | None  # GPUs both pools may reserve together; None: no budget
    idle_seconds: float


@dataclass(frozen=True)
class Look:
    """One pool as the autopilot sees it at one tick."""

    pool: str
    target: int
    pending: int
    busy: int  # actors with a task in flight
    slots: int  # tasks one actor runs at once
    share: float  # GPUs one actor reserves
    queued: int  # files of the pool's backlog not started
    running: int  # files of its backlog being worked on
    batches: tuple[str, ...]  # the batches with such files: the backlog's identity
    fits_more: int | None  # actors of the pool the cluster could place now; None: unknown
    others_gpus: float  # GPUs the other pool's target reserves (the budget is shared)


@dataclass(frozen=True)
class Memory:
    """What the autopilot keeps between ticks (and across its restarts)."""

    last_target: int | None = None  # the size it last set or saw; None: not yet looked
    hold: tuple[str, ...] | None = None  # the backlog at a hand resize, while it holds
    idle_since: float | None = None  # since when no file waits


@dataclass(frozen=True)
class Step:
    """A resize to make, or (`size` None) a note worth logging once."""

    pool: str
    size_from: int
    size: int | None
    reason: str


def decide(look: Look, limits: Limits, memory: Memory, now: float) -> tuple[Step | None, Memory]:
    """The next step for one pool and the memory to keep."""
    if memory.last_target is None:
        memory = replace(memory, last_target=look.target)
    if look.target != memory.last_target:
        held = replace(memory, last_target=look.target, hold=look.batches)
        why = f"resized to {look.target} by hand: held until the backlog changes"
        return Step(look.pool, memory.last_target, None, why), held
    if memory.hold is not None:
        if look.batches == memory.hold:
            return None, memory
        memory = replace(memory, hold=None)
    if look.queued:
        memory = replace(memory, idle_since=None)
    elif memory.idle_since is None:
        memory = replace(memory, idle_since=now)
    size, reason = _wanted(look, limits, memory, now)
    if size is None or size == look.target:
        return (Step(look.pool, look.target, None, reason) if reason else None), memory
    return Step(look.pool, look.target, size, reason), replace(memory, last_target=size)


def _wanted(look: Look, limits: Limits, memory: Memory, now: float) -> tuple[int | None, str]:
    floor = max(limits.minimum, look.busy)
    top = limits.maximum
    if top is not None and look.target > max(top, floor):
        return max(top, floor), f"above the maximum of {top}"
    if look.queued:
        need = math.ceil((look.queued + look.running) / max(1, look.slots))
        want = max(need, limits.minimum) if top is None else min(max(need, limits.minimum), top)
        if want <= look.target:
            return None, ""
        if look.pending:
            return None, ""  # an actor still waits for room: more would wait too
        grow, limited = _room(look, limits, want - look.target)
        waiting = f"{look.queued} file(s) wait, {look.running} in flight"
        if grow <= 0:
            return None, f"{waiting}: no room for another actor ({limited})"
        words = f"{waiting}: {need} actor(s) of {look.slots} slot(s) would keep them busy"
        return look.target + grow, words + (f"; {limited}" if limited else "")
    if look.target < limits.minimum:
        grow, limited = _room(look, limits, limits.minimum - look.target)
        if grow > 0:
            return look.target + grow, f"below the minimum of {limits.minimum}"
        return None, ""
    idle = now - (memory.idle_since or now)
    if look.target > floor and idle >= limits.idle_seconds:
        busy = f", {look.busy} busy" if look.busy > limits.minimum else ""
        return floor, (
            f"no file waiting for {idle:.0f} s: down towards the minimum of {limits.minimum}{busy}"
        )
    return None, ""


def _room(look: Look, limits: Limits, wanted: int) -> tuple[int, str]:
    """How many of `wanted` more actors fit the budget and the cluster, and what limited."""
    grow, limited = wanted, ""
    if limits.gpu_budget is not None and look.share > 0:
        left = limits.gpu_budget - look.others_gpus - look.target * look.share
        by_budget = max(0, math.floor(round(left / look.share, 6)))
        if by_budget < grow:
            grow, limited = by_budget, f"the GPU budget of {limits.gpu_budget:g}"
    if look.fits_more is not None and look.fits_more < grow:
        grow, limited = look.fits_more, "the cluster has no more room"
    return grow, limited
