"""One detached supervisor per pool: it holds the target size, reconciles, dispatches, drains.

Everything that changes the roster runs on the actor's event loop with no `await` in between,
so resizes and deaths never interleave halfway: the last resize wins, and an actor is in the
roster from the moment it is created. A restarted supervisor adopts the `ortui-<pool>-<n>`
actors it finds. Together: no orphan actors.

OpenRAG lost queued work when a pool actor went away; here a task whose actor dies is run again
on another one (up to MAX_ATTEMPTS), and retiring actors finish their tasks before they end.

A caller can have its task run through the supervisor (`run`: one more hop per task), or lease
slots and call the actors itself (`lease`, `give_back`, `lease_watch`; the caller's side is
`pools.lease.PoolClient`): the supervisor still decides who gets which slot and whom to retire,
and a lease whose holder stops renewing it is freed after LEASE_TTL_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import ActorAlreadyExistsError, RayActorError, RayTaskError

from openrag_tui.config.pools import PoolSpec
from openrag_tui.pools.roster import Member, Phase, PoolState, Roster
from openrag_tui.pools.spec import actor_index, actor_name
from openrag_tui.pools.workers import CONTROL_CALLS, WORKER_CLASSES

MAX_ATTEMPTS = 3
#: how long a retired actor may take to end itself before it is killed
END_GRACE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 30.0
#: a lease not renewed for this long is freed (its holder renews it every second or so)
LEASE_TTL_SECONDS = 15.0


@dataclass(frozen=True)
class Grant:
    """Slots leased to a holder: per member, how many, and the actors' handles."""

    slots: dict[str, int]
    handles: dict[str, ActorHandle]
    version: int


@dataclass(frozen=True)
class LeaseView:
    """What a holder must know of the pool: which members to give back (retiring, so drained
    first) and which are still members at all (one that is not died or ended)."""

    version: int
    retiring: frozenset[str]
    members: frozenset[str]


class TaskLost(RuntimeError):
    """Every actor that took the task died under it."""


class PoolSupervisor:
    """Keeps `target` actors of one pool and hands them work, least-loaded first."""

    def __init__(self, spec: PoolSpec) -> None:
        self._spec = spec
        self._worker_class = ray.remote(WORKER_CLASSES[spec.name])
        self._roster = Roster(spec.slots)
        self._handles: dict[str, ActorHandle] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._waiters: deque[asyncio.Future[Member]] = deque()
        self._changed = asyncio.Event()
        self._version = 0
        self._next_index = 0
        self._failed_starts = 0
        self._last_error: str | None = None
        self._counts: Counter[str] = Counter()
        self._target = self._adopt() or spec.size
        self._reconcile()
        asyncio.get_running_loop().call_later(LEASE_TTL_SECONDS / 3, self._lapse_leases)

    # The driver's calls

    async def apply(self, spec: PoolSpec) -> PoolState:
        """Take a (re)deployed spec: its size and slots; a new request (another GPU share)
        replaces the actors, each retiring drained once its successor is asked for."""
        if spec.request != self._spec.request:
            self._roster.generation += 1
        self._spec = spec
        self._roster.slots = spec.slots
        return await self.resize(spec.size)

    async def resize(self, size: int) -> PoolState:
        if size < 0:
            raise ValueError(f"a pool size is a whole number of 0 or more (got {size})")
        self._target = size
        self._reconcile()
        return self._state()

    async def status(self) -> PoolState:
        return self._state()

    async def watch(self, version: int, timeout: float) -> PoolState:
        """The state once it differs from `version`, or after `timeout` seconds."""
        if version == self._version:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
        return self._state()

    async def run(self, function: Any, args: tuple[Any, ...]) -> Any:
        """Run one task on the least-loaded live actor, waiting for a free slot if need be."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            member = await self._acquire()
            try:
                result = await self._call(member.name, function, args)
            except RayTaskError:  # the task's own failure, even one about another actor
                raise
            except RayActorError as error:
                self._lost(member.name, error)
                if attempt < MAX_ATTEMPTS:
                    self._counts["retried"] += 1
                continue
            finally:
                self._release(member)
            self._counts["completed"] += 1
            return result
        raise TaskLost(f"the {self._spec.name} actors running a task died {MAX_ATTEMPTS} times")

    async def lease(self, holder: str, incarnation: str, want: int) -> Grant:
        """Up to `want` slots for the holder to run tasks on itself, least-loaded first: at
        least one (waiting for it in turn with other callers), more if free at once."""
        now = time.monotonic()
        self._roster.holding(holder, incarnation, now)  # a new incarnation frees the old slots
        first = await self._acquire()
        members = [first, *self._roster.take(max(0, want - 1))]
        self._roster.lease(holder, incarnation, members, time.monotonic())
        counted = Counter(member.name for member in members)
        return Grant(dict(counted), {name: self._handles[name] for name in counted}, self._version)

    async def give_back(
        self, holder: str, incarnation: str, slots: dict[str, int], counts: dict[str, int]
    ) -> None:
        """Slots the holder no longer holds, and what its tasks did since it last said."""
        self._counts.update(counts)
        self._roster.give_back(holder, incarnation, slots, time.monotonic())
        self._after_release()

    async def lease_watch(
        self,
        holder: str,
        incarnation: str,
        held: dict[str, int],
        counts: dict[str, int],
        version: int,
        timeout: float,
    ) -> LeaseView:
        """Renew the holder's lease (it says what it holds), and answer once the pool changed
        from `version`, or after `timeout` seconds."""
        self._counts.update(counts)
        self._roster.renew(holder, incarnation, held, time.monotonic())
        state = await self.watch(version, timeout)
        return LeaseView(
            state.version,
            frozenset(state.names(Phase.RETIRING)),
            frozenset(self._roster.members),
        )

    async def report_lost(self, name: str, reason: str) -> None:
        """A holder's task found this actor dead (its lifeline may not have said yet)."""
        self._lost(name, RuntimeError(reason))

    async def shutdown(self) -> list[str]:
        """End every actor now, in-flight tasks included: the pool is being torn down."""
        self._target = 0
        names = list(self._roster.members)
        for name in names:
            self._end(name, at_once=True)
        self._bump()
        return names

    # Membership

    def _adopt(self) -> int:
        """Take over the pool's actors left by a previous supervisor; how many there were."""
        for entry in ray.util.list_named_actors(all_namespaces=True):
            index = actor_index(self._spec.name, entry["name"])
            if entry["namespace"] == self._spec.namespace and index is not None:
                self._take(entry["name"], index)
        return len(self._roster.members)

    def _take(self, name: str, index: int) -> None:
        with contextlib.suppress(ValueError):  # it ended since it was listed
            self._add(name, index, ray.get_actor(name, namespace=self._spec.namespace))
        self._next_index = max(self._next_index, index + 1)

    def _create(self) -> None:
        index = self._next_index
        self._next_index += 1
        name = actor_name(self._spec.name, index)
        options = {
            "name": name,
            "namespace": self._spec.namespace,
            "lifetime": "detached",
            "num_gpus": self._spec.num_gpus,
            "num_cpus": self._spec.num_cpus,
            "max_concurrency": self._spec.slots + CONTROL_CALLS,
        }
        try:
            handle = self._worker_class.options(**options).remote(self._spec)
        except ActorAlreadyExistsError:  # a stray of ours: adopt it, reconcile retires surplus
            self._take(name, index)
            return
        self._add(name, index, handle)

    def _add(self, name: str, index: int, handle: ActorHandle) -> None:
        self._roster.add(name, index)
        self._handles[name] = handle
        watcher = asyncio.get_running_loop().create_task(self._watch(name, handle))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, name: str, handle: ActorHandle) -> None:
        """Mark the actor alive once ready; notice its death (even idle) through the lifeline."""
        try:
            await handle.ready.remote()
            member = self._roster.members.get(name)
            if member is not None and member.phase is Phase.PENDING:
                member.phase = Phase.ALIVE
                self._failed_starts = 0
            self._reconcile()
            await handle.lifeline.remote()
        except RayActorError as error:
            self._lost(name, error)

    def _lost(self, name: str, error: BaseException) -> None:
        """An actor died on its own: forget it and replace it (slower if it never started)."""
        member = self._roster.remove(name)
        if member is None:  # already ended or already handled
            return
        handle = self._handles.pop(name, None)
        if handle is not None:  # a caller may have found it unreachable, not dead: no orphan
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)
        self._counts["lost"] += 1
        self._last_error = f"{name}: {_first_line(error)}"
        if member.phase is not Phase.PENDING:
            self._reconcile()
            return
        self._failed_starts += 1
        delay = min(BACKOFF_MAX_SECONDS, 0.5 * 2**self._failed_starts)
        asyncio.get_running_loop().call_later(delay, self._reconcile)
        self._bump()

    def _end(self, name: str, at_once: bool = False) -> None:
        """A drained actor ends itself (an intended exit); `at_once` (teardown) kills it.
        One that does not end within END_GRACE_SECONDS is killed all the same."""
        self._roster.remove(name)
        handle = self._handles.pop(name, None)
        if handle is None:
            return
        if at_once:
            ray.kill(handle, no_restart=True)
            return
        handle.end.remote()
        asyncio.get_running_loop().call_later(
            END_GRACE_SECONDS, lambda: ray.kill(handle, no_restart=True)
        )

    def _reconcile(self) -> None:
        """Move toward the target: revive or create, retire, end the drained; then dispatch."""
        plan = self._roster.plan(self._target)
        self._roster.apply(plan)
        for _ in range(plan.create):
            self._create()
        for member in self._roster.drained():
            self._end(member.name)
        self._bump()
        self._dispatch()

    def _bump(self) -> None:
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    # Slots

    async def _call(self, name: str, function: Any, args: tuple[Any, ...]) -> Any:
        handle = self._handles.get(name)
        if handle is None:  # it died between being picked and being called
            raise RayActorError()
        return await handle.run.remote(function, args)

    async def _acquire(self) -> Member:
        """A member with a free slot, its slot taken; callers queue first come, first served."""
        if not self._waiters:
            member = self._roster.pick()
            if member is not None:
                member.in_flight += 1
                return member
        waiter: asyncio.Future[Member] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot just too late
                self._release(waiter.result())
            raise

    def _release(self, member: Member) -> None:
        member.in_flight -= 1
        drained = member.phase is Phase.RETIRING and not member.in_flight
        if drained and member.name in self._roster.members:
            self._reconcile()
        else:
            self._dispatch()

    def _after_release(self) -> None:
        """Slots came back: end retirees now drained, or hand the slots to waiting callers."""
        if self._roster.drained():
            self._reconcile()
        else:
            self._dispatch()

    def _lapse_leases(self) -> None:
        """Free the slots of holders gone silent (a killed caller), then look again later."""
        if self._roster.lapse(time.monotonic(), LEASE_TTL_SECONDS):
            self._after_release()
        asyncio.get_running_loop().call_later(LEASE_TTL_SECONDS / 3, self._lapse_leases)

    def _dispatch(self) -> None:
        """Hand free slots to waiting callers, in order."""
        while self._waiters:
            member = self._roster.pick()
            if member is None:
                return
            waiter = self._waiters.popleft()
            if not waiter.cancelled():
                member.in_flight += 1
                waiter.set_result(member)

    def _state(self) -> PoolState:
        counts = self._roster.counts()
        return PoolState(
            pool=self._spec.name,
            target=self._target,
            alive=counts[Phase.ALIVE.value],
            pending=counts[Phase.PENDING.value],
            retiring=counts[Phase.RETIRING.value],
            in_flight=counts["in_flight"],
            waiting=sum(not waiter.done() for waiter in self._waiters),
            slots=self._spec.slots,
            members=self._roster.member_states(),
            completed=self._counts["completed"],
            retried=self._counts["retried"],
            lost=self._counts["lost"],
            version=self._version,
            last_error=self._last_error,
        )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
