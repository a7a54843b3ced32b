"""The caller's side of a pool: tasks run straight on the pool's actors, on slots leased from
its supervisor, instead of through the supervisor one hop per task.

The supervisor still decides everything that matters to the pool: how many slots a caller gets
and on which actors (least-loaded), whom to retire, and when a retiree has drained. The client
asks for slots while it has tasks waiting, hands a slot that frees up to its next task, gives
back what stays idle for LINGER_SECONDS (the pool's `in_flight` then says what is really busy),
and keeps its lease alive with a watch that also tells it which actors retire: their slots go
back as soon as their tasks end. A task whose actor dies runs again on another one, up to
MAX_ATTEMPTS, as through the supervisor. Use one client per event loop (it is not thread-safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter, deque
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayError, RayTaskError

from openrag_tui.config.pools import check_pool
from openrag_tui.pools.errors import PoolsNotDeployed
from openrag_tui.pools.spec import supervisor_name
from openrag_tui.pools.supervisor import MAX_ATTEMPTS, Grant, LeaseView, TaskLost
from openrag_tui.pools.tasks import resolve

#: a slot left idle this long goes back to the supervisor
LINGER_SECONDS = 0.5
#: the lease's watch asks the supervisor at least this often (it renews the lease)
WATCH_SECONDS = 1.0
#: a supervisor that does not answer (restarting) is asked again after this, this many times
SUPERVISOR_RETRY = (0.5, 20)

_log = logging.getLogger(__name__)


class PoolClient:
    """Runs one pool's tasks on its actors directly. `holder` names the caller to the
    supervisor: a caller that restarts under the same name (the coordinator) frees its old
    lease at once; an anonymous client gets a name of its own."""

    def __init__(self, pool: str, holder: str | None = None) -> None:
        self.pool = check_pool(pool)
        self.holder = holder or f"client-{secrets.token_hex(6)}"
        self._incarnation = secrets.token_hex(6)
        self._supervisor_handle: ActorHandle | None = None
        self._handles: dict[str, ActorHandle] = {}
        self._free: Counter[str] = Counter()  # held slots no task uses, per actor
        self._busy: Counter[str] = Counter()  # held slots a task uses, per actor
        self._busy_total = 0
        self._peak = 0  # the most slots in use at once since idle ones were last given back
        self._granted_at: dict[str, int] = {}  # the pool's version when an actor was granted
        self._retiring: set[str] = set()
        self._dead: set[str] = set()
        self._waiters: deque[asyncio.Future[str]] = deque()
        self._returns: Counter[str] = Counter()  # slots to give back at the end of this turn
        self._counts: Counter[str] = Counter()  # completed / retried, not yet told
        self._leasing: asyncio.Task[None] | None = None
        self._request: ray.ObjectRef | None = None  # the lease request being answered
        self._watching: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._flushing = False
        self._background: set[asyncio.Task[Any]] = set()

    # The caller's calls

    async def run(self, kind: str, *args: Any) -> Any:
        """Run one task of `kind` on a free slot (waiting for one), again on another actor if
        its actor dies; its own failure is raised as Ray raises it (RayTaskError)."""
        function = resolve(kind)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            name = await self._acquire()
            try:
                handle = self._handles.get(name)
                if handle is None:  # it died between being handed over and called
                    raise RayActorError()
                result = await arrival(handle.run.remote(function, args))
            except RayTaskError:  # the task's own failure, even one about another actor
                raise
            except RayActorError as error:
                self._lost(name, error)
                if attempt < MAX_ATTEMPTS:
                    self._counts["retried"] += 1
                continue
            finally:
                self._release(name)
            self._counts["completed"] += 1
            return result
        raise TaskLost(f"the {self.pool} actors running a task died {MAX_ATTEMPTS} times")

    def held(self) -> dict[str, int]:
        """Slots held now, per actor (busy or idle)."""
        return dict(self._free + self._busy)

    async def close(self) -> None:
        """Give every idle slot back, and any a pending request would still get, and stop
        renewing (tasks still running keep theirs until they end; the lease lapses then)."""
        for task in (self._leasing, self._watching):
            if task is not None:
                task.cancel()
        request, self._request = self._request, None
        if request is not None:
            ray.cancel(request)
            with contextlib.suppress(Exception):  # cancelled in time: nothing was granted
                grant: Grant = await request
                for name, count in grant.slots.items():
                    self._give(name, count)
        for name in list(self._free):
            self._give(name, self._free.pop(name))
        await self._flush()

    # Slots

    async def _acquire(self) -> str:
        while self._waiters and self._waiters[0].done():  # cancelled while they waited
            self._waiters.popleft()
        if not self._waiters:
            name = self._pick()
            if name is not None:
                self._free[name] -= 1
                if not self._free[name]:
                    del self._free[name]
                self._use(name)
                return name
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._want_more()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot just too late
                self._release(waiter.result())
            raise

    def _pick(self) -> str | None:
        """The held idle slot on the actor this client loads least."""
        return min(self._free, key=self._busy.__getitem__, default=None)

    def _use(self, name: str) -> None:
        self._busy[name] += 1
        self._busy_total += 1
        self._peak = max(self._peak, self._busy_total)

    def _release(self, name: str) -> None:
        self._busy[name] -= 1
        self._busy_total -= 1
        if self._busy[name] <= 0:
            del self._busy[name]
        if name not in self._dead:
            self._offer(name)

    def _offer(self, name: str) -> None:
        """A held slot is free: to the next waiting task, back if its actor retires, else idle
        (given back if it is not needed)."""
        if name in self._retiring:
            self._give(name, 1)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.cancelled():
                self._use(name)
                waiter.set_result(name)
                return
        self._free[name] += 1
        if self._linger is None:
            self._linger = asyncio.get_running_loop().call_later(
                LINGER_SECONDS, self._give_idle_back
            )

    def _give_idle_back(self) -> None:
        """Keep as many idle slots as were in use at the peak of the last LINGER_SECONDS (a
        steady stream of tasks needs them in a moment), give back the rest: the least-loaded
        actors' first, so that the pool's busy actors are the ones really busy."""
        self._linger = None
        if any(not waiter.done() for waiter in self._waiters):
            return
        keep = max(0, self._peak - self._busy_total)
        self._peak = self._busy_total
        surplus = sum(self._free.values()) - keep
        for name in sorted(self._free, key=self._busy.__getitem__):
            if surplus <= 0:
                break
            given = min(surplus, self._free[name])
            self._free[name] -= given
            if not self._free[name]:
                del self._free[name]
            self._give(name, given)
            surplus -= given
        if self._free:
            self._linger = asyncio.get_running_loop().call_later(
                LINGER_SECONDS, self._give_idle_back
            )

    def _lost(self, name: str, error: BaseException) -> None:
        """The actor died under a task: none of its slots is used again."""
        if name in self._dead:
            return
        self._dead.add(name)
        self._free.pop(name, None)
        self._handles.pop(name, None)
        reason = f"{name}: {_first_line(error)}"
        self._spawn(self._call_supervisor("report_lost", name, reason))

    # The lease

    def _want_more(self) -> None:
        if self._leasing is None or self._leasing.done():
            self._leasing = asyncio.get_running_loop().create_task(self._lease())

    async def _lease(self) -> None:
        """Ask for slots while tasks wait for one; a supervisor that cannot be reached fails
        the waiting tasks with its reason (PoolsNotDeployed, RayActorError)."""
        try:
            while want := sum(not waiter.done() for waiter in self._waiters):
                grant: Grant = await self._call_supervisor(
                    "lease", self.holder, self._incarnation, want, track=True
                )
                self._take(grant)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_exception(error)

    def _take(self, grant: Grant) -> None:
        self._handles.update(grant.handles)
        for name, count in grant.slots.items():
            self._dead.discard(name)
            self._granted_at[name] = grant.version
            for _ in range(count):
                self._offer(name)
        if self._watching is None or self._watching.done():
            self._watching = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Renew the lease while anything is held or awaited, and follow the pool: slots on
        retiring actors go back (idle ones now), actors no longer members are forgotten."""
        version = -1
        while self._free or self._busy or self._waiters:
            try:
                view: LeaseView = await self._call_supervisor(
                    "lease_watch", self.holder, self._incarnation, self.held(), self._told(),
                    version, WATCH_SECONDS,
                )  # fmt: skip
            except PoolsNotDeployed:
                return
            except Exception:  # not reachable for a while: the calls themselves will say
                _log.warning("renewing the %s pool's lease failed", self.pool, exc_info=True)
                await asyncio.sleep(WATCH_SECONDS)
                continue
            version = view.version
            self._follow(view)

    def _follow(self, view: LeaseView) -> None:
        """Take in what the pool says. A view older than an actor's grant may not list it yet:
        only a view at least as new says an actor is gone."""
        self._retiring = set(view.retiring)
        for name in list(self._free):
            if name in self._retiring:
                self._give(name, self._free.pop(name))
            elif name not in view.members and self._granted_at.get(name, 0) <= view.version:
                self._dead.add(name)
                del self._free[name]

    def _give(self, name: str, count: int) -> None:
        """Give slots back at the end of this turn, with the others of the turn."""
        if count <= 0:
            return
        self._returns[name] += count
        if not self._flushing:
            self._flushing = True
            self._spawn(self._flush())

    async def _flush(self) -> None:
        self._flushing = False
        returns, self._returns = self._returns, Counter()
        if returns:
            with contextlib.suppress(Exception):  # a lapsed lease frees them all the same
                await self._call_supervisor(
                    "give_back", self.holder, self._incarnation, dict(returns), self._told()
                )

    def _told(self) -> dict[str, int]:
        counts, self._counts = dict(self._counts), Counter()
        return counts

    # The supervisor

    async def _call_supervisor(self, method: str, *args: Any, track: bool = False) -> Any:
        """One call to the pool's supervisor, asked again while it restarts; PoolsNotDeployed
        once it is gone. `track`: the call is the pending request for slots (`close` cancels
        it, and gives back what it got if it could not be cancelled in time)."""
        pause, attempts = SUPERVISOR_RETRY
        for attempt in range(attempts):
            supervisor = self._supervisor()
            try:
                reference = getattr(supervisor, method).remote(*args)
                if track:
                    self._request = reference
                try:
                    return await reference
                finally:
                    if track and self._request is reference:
                        self._request = None
            except RayActorError:
                self._supervisor_handle = None
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    def _supervisor(self) -> ActorHandle:
        if self._supervisor_handle is None:
            try:
                self._supervisor_handle = ray.get_actor(supervisor_name(self.pool))
            except ValueError:
                namespace = ray.get_runtime_context().namespace
                raise PoolsNotDeployed(
                    f"the {self.pool} pool is not deployed in namespace {namespace!r}: "
                    "run `openrag-tui pools deploy`"
                ) from None
        return self._supervisor_handle

    def _spawn(self, coroutine: Any) -> None:
        """A call nobody awaits (a give-back, a death report): its failure is only logged."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.info("a call to the %s supervisor failed: %s", self.pool, task.exception())


def arrival(reference: ray.ObjectRef) -> asyncio.Future[Any]:
    """The reference's result on the running loop, raised as `await reference` raises it.

    Handed over straight from Ray's callback: `await reference` goes through a
    `concurrent.futures.Future` and `asyncio.wrap_future`, which cost the caller 40-70 µs of CPU
    a task more on the 2-core box (docs/benchmarks.md, "Dispatch at 1 slot, third day").
    `_on_completed` is the hook those are built on, in every Ray since 1.x. The callback holds
    the reference until the result has arrived, as Ray's own future does."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def arrived(result: Any, _held: ray.ObjectRef = reference) -> None:  # in Ray's thread
        with contextlib.suppress(RuntimeError):  # the loop has ended: nobody awaits it now
            loop.call_soon_threadsafe(_settle, future, result)

    reference._on_completed(arrived)
    return future


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    """As Ray settles the future of an awaited reference (`_set_future_helper`)."""
    if future.done():  # cancelled meanwhile
        return
    if isinstance(result, RayTaskError):
        future.set_exception(result.as_instanceof_cause())
    elif isinstance(result, RayError):
        future.set_exception(result)
    else:
        future.set_result(result)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
