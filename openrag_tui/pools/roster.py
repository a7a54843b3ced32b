"""A supervisor's bookkeeping as plain data: who may take work, who retires, what to create,
and which slots are leased to which caller.

No Ray here: a member is a name and a few numbers, so the decisions (least-loaded dispatch, whom
to retire, when a retiree is done, whose lease lapsed) are unit-tested directly. The supervisor
keeps the actor handles beside the roster and acts on what it decides.

A member's `in_flight` counts its taken slots: tasks the supervisor runs for a caller, and slots
leased to callers that run their tasks on the actor themselves (`pools.lease`). A lease is
recorded per holder and incarnation (a restarted holder is a new incarnation: its old slots are
freed at once), renewed by the holder's watch, and freed when it lapses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Phase(StrEnum):
    """PENDING: created, not ready yet (maybe waiting for room). ALIVE: takes work.
    RETIRING: takes no new work; ended once its in-flight tasks are done."""

    PENDING = "pending"
    ALIVE = "alive"
    RETIRING = "retiring"


@dataclass
class Member:
    name: str
    index: int  # from the supervisor's counter: higher is newer
    phase: Phase = Phase.PENDING
    in_flight: int = 0
    generation: int = 0  # the spec it was created with: an older one is replaced


@dataclass(frozen=True)
class Plan:
    """What reaching a target takes: members back from retiring, new actors, members to retire."""

    revive: tuple[str, ...] = ()
    create: int = 0
    retire: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemberState:
    name: str
    phase: str
    in_flight: int


@dataclass(frozen=True)
class PoolState:
    """One pool as its supervisor sees it. `pending` actors are created but not ready (often
    waiting for room: the cluster view says why); `waiting` counts callers waiting for a slot."""

    pool: str
    target: int
    alive: int
    pending: int
    retiring: int
    in_flight: int
    waiting: int
    slots: int
    members: tuple[MemberState, ...]
    completed: int
    retried: int
    lost: int  # actors that died on their own (each one replaced)
    version: int
    last_error: str | None = None

    @property
    def settled(self) -> bool:
        """Exactly `target` actors alive, none starting, none draining."""
        return self.alive == self.target and not self.pending and not self.retiring

    def names(self, phase: Phase) -> tuple[str, ...]:
        return tuple(m.name for m in self.members if m.phase == phase.value)


@dataclass
class Holding:
    """The slots one holder leased, per member, as the supervisor counts them."""

    incarnation: str
    seen: float  # when the holder last asked for, gave back or renewed its lease
    slots: Counter[str] = field(default_factory=Counter)


@dataclass
class Roster:
    """`generation` counts the specs whose requests differ (a new GPU share): members of an
    older one are retired, drained first, and replaced by actors of the current request."""

    slots: int
    members: dict[str, Member] = field(default_factory=dict)
    generation: int = 0
    holdings: dict[str, Holding] = field(default_factory=dict)

    def add(self, name: str, index: int, phase: Phase = Phase.PENDING) -> Member:
        member = self.members[name] = Member(name, index, phase, generation=self.generation)
        return member

    def remove(self, name: str) -> Member | None:
        """The member leaves, and with it any slot of it a holder leased."""
        for holding in self.holdings.values():
            holding.slots.pop(name, None)
        return self.members.pop(name, None)

    def in_phase(self, *phases: Phase) -> list[Member]:
        return [m for m in self.members.values() if m.phase in phases]

    def pick(self) -> Member | None:
        """The least-loaded alive member with a free slot (the oldest on ties), else None."""
        free = [m for m in self.in_phase(Phase.ALIVE) if m.in_flight < self.slots]
        return min(free, key=lambda m: (m.in_flight, m.index), default=None)

    def take(self, count: int) -> list[Member]:
        """Up to `count` free slots, each on the least-loaded member at the time (taken)."""
        taken = []
        while len(taken) < count and (member := self.pick()) is not None:
            member.in_flight += 1
            taken.append(member)
        return taken

    # Leases

    def holding(self, holder: str, incarnation: str, now: float) -> Holding:
        """The holder's record, renewed; a new incarnation's replaces the old one, whose slots
        are freed (that holder restarted: nothing of the old one runs any more)."""
        found = self.holdings.get(holder)
        if found is not None and found.incarnation != incarnation:
            self._free(found.slots)
            found = None
        if found is None:
            found = self.holdings[holder] = Holding(incarnation, now)
        found.seen = now
        return found

    def lease(self, holder: str, incarnation: str, members: list[Member], now: float) -> None:
        """Record slots already taken (`take`, or a waiter's) as the holder's."""
        holding = self.holding(holder, incarnation, now)
        holding.slots.update(member.name for member in members)

    def give_back(
        self, holder: str, incarnation: str, slots: Mapping[str, int], now: float
    ) -> None:
        """Free slots the holder no longer holds (never more than it was counted for); a
        past incarnation's give-back is ignored (its slots were freed when it was replaced)."""
        holding = self.holdings.get(holder)
        if holding is None or holding.incarnation != incarnation:
            return
        holding.seen = now
        returned = Counter({name: min(count, holding.slots[name]) for name, count in slots.items()})
        holding.slots.subtract(returned)
        holding.slots = +holding.slots
        self._free(returned)

    def renew(self, holder: str, incarnation: str, held: Mapping[str, int], now: float) -> None:
        """The holder is alive and says what it holds. A holder this roster has no record of
        (a restarted supervisor, a lapsed lease) is counted for what it says it holds, on the
        members that are still here; otherwise the roster's own count stands (the holder's
        word may be older than a give-back on its way)."""
        known = self.holdings.get(holder)
        holding = self.holding(holder, incarnation, now)
        if known is None or known is not holding:
            adopted = Counter({n: c for n, c in held.items() if n in self.members and c > 0})
            for name, count in adopted.items():
                self.members[name].in_flight += count
            holding.slots = adopted

    def lapse(self, now: float, ttl: float) -> list[str]:
        """Free the slots of holders not heard from for `ttl` seconds; their names."""
        gone = [name for name, h in self.holdings.items() if now - h.seen > ttl]
        for name in gone:
            self._free(self.holdings.pop(name).slots)
        return gone

    def _free(self, slots: Mapping[str, int]) -> None:
        for name, count in slots.items():
            member = self.members.get(name)
            if member is not None:
                member.in_flight = max(0, member.in_flight - count)

    def plan(self, target: int) -> Plan:
        """Reach `target` cheaply: revive retirees before creating; retire pending members
        first (they hold no work), then the least busy, the newest first. Members of an older
        generation are retired whatever the target, and never revived."""
        current = self.generation
        stale = tuple(
            m.name for m in self.in_phase(Phase.PENDING, Phase.ALIVE) if m.generation != current
        )
        active = [m for m in self.in_phase(Phase.PENDING, Phase.ALIVE) if m.generation == current]
        if len(active) < target:
            retiring = sorted(
                (m for m in self.in_phase(Phase.RETIRING) if m.generation == current),
                key=lambda m: (-m.in_flight, -m.index),
            )
            revive = tuple(m.name for m in retiring[: target - len(active)])
            return Plan(revive=revive, create=target - len(active) - len(revive), retire=stale)
        surplus = sorted(active, key=lambda m: (m.phase != Phase.PENDING, m.in_flight, -m.index))
        return Plan(retire=stale + tuple(m.name for m in surplus[: len(active) - target]))

    def apply(self, plan: Plan) -> None:
        for name in plan.revive:
            self.members[name].phase = Phase.ALIVE
        for name in plan.retire:
            self.members[name].phase = Phase.RETIRING

    def drained(self) -> list[Member]:
        """Retiring members with nothing in flight: ready to be ended."""
        return [m for m in self.in_phase(Phase.RETIRING) if not m.in_flight]

    def counts(self) -> dict[str, int]:
        """Members per phase, and the tasks in flight."""
        counts = {phase.value: len(self.in_phase(phase)) for phase in Phase}
        counts["in_flight"] = sum(m.in_flight for m in self.members.values())
        return counts

    def member_states(self) -> tuple[MemberState, ...]:
        ordered = sorted(self.members.values(), key=lambda m: m.index)
        return tuple(MemberState(m.name, m.phase.value, m.in_flight) for m in ordered)
