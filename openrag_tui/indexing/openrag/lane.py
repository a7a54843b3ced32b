"""Back-pressure for one OpenRAG: how many more of our files may go in now, and when our tasks
there end.

OpenRAG accepts every upload however full its pools are, so the limit is ours to keep: never
more of our files in flight inside it than its free capacity. With an admin token that is
`/queue/info`'s `total_slots - active`, less the uploads it may not count yet (those under way
when it answered, or started since); without one, `RAY_POOL_SIZE × RAY_MAX_TASKS_PER_WORKER`
from the .env less our own files in flight.

One watcher per lane looks at OpenRAG while files wait for room or tasks of ours run: which
tasks are active (`/queue/tasks`), to wake at once the files whose task ended (so each file
needs no polling of its own) and to count the room (`total_slots` less the active tasks), and
`/queue/info` for the slots themselves, once a second: one request per look. It looks as often
as an eighth of a typical task's time (measured: from an upload's acknowledgement to its end),
from 5 ms to 1 s, so the overhead follows OpenRAG's pace. Without the admin role, files poll
their own task and the .env bounds the room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from openrag_tui.indexing.errors import AuthRefused, Unavailable
from openrag_tui.indexing.openrag.client import OpenRag, QueueInfo

LOOK_SECONDS = (0.005, 1.0)
#: how old the slots counted from /queue/info may be while /queue/tasks counts the active ones
INFO_SECONDS = 1.0
#: a typical task's seconds before any was measured
FIRST_GUESS_SECONDS = 0.5
T = TypeVar("T")

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """The limit in force, where it came from, and what is in flight (for status)."""

    capacity: int  # slots in all (queue/info's total_slots, or the .env's product)
    source: str  # "queue/info" or ".env"
    in_flight: int  # our files uploading or inside OpenRAG
    free: int  # how many more may go in now


class Lane:
    """One OpenRAG's room for our files, and the ends of our tasks in it."""

    def __init__(
        self,
        client: OpenRag,
        fallback_slots: int,
        env_file: str | None = None,
        call: Callable[..., Awaitable[Any]] | None = None,
        on_room: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.env_file = env_file  # where AUTH_TOKEN is read again
        self.fallback_slots = max(1, fallback_slots)
        self.uploading = 0  # uploads sent, not yet acknowledged
        self.inside = 0  # acknowledged, not yet seen to end
        self._call = call or (lambda do, *args: asyncio.to_thread(do, *args))
        self._on_room = on_room
        self._started = 0  # uploads ever started (to know which a queue/info may not count)
        self._budget = 0
        self._info: QueueInfo | None = None
        self._info_at = 0.0
        self.admin = True  # until /queue/info refuses the token's role
        self.lists_tasks = True  # until /queue/tasks is refused
        self._waiting = False  # files wait for room
        self._watched: dict[str, asyncio.Event] = {}  # task id → set when it may have ended
        self._acknowledged_at: dict[str, float] = {}
        self._typical = FIRST_GUESS_SECONDS
        self._finished_seen: int | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return self.uploading + self.inside

    @property
    def wakes_ends(self) -> bool:
        """Whether the watcher tells files their task ended (else they poll it)."""
        return self.admin and self.lists_tasks

    def limit(self) -> Limit:
        if self.admin and self._info is not None:
            return Limit(self._info.total_slots, "queue/info", self.in_flight, max(0, self._budget))
        free = max(0, self.fallback_slots - self.in_flight)
        return Limit(self.fallback_slots, ".env", self.in_flight, free)

    async def room(self, waiting: int) -> int:
        """How many uploads may start now (each must be `started()`); while files wait, the
        watcher calls `on_room` when there may be more."""
        if self.admin and self._info is None:
            await self._look_at_queue()  # the first time: at once
        room = (
            max(0, self._budget)
            if self.admin
            else max(0, self.fallback_slots - self.in_flight)
        )  # fmt: skip
        self._waiting = waiting > room
        if self._waiting:
            self._watch()
        return min(room, waiting)

    # the watcher

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._run())

    def _look_seconds(self) -> float:
        return min(max(self._typical / 8, LOOK_SECONDS[0]), LOOK_SECONDS[1])

    async def _run(self) -> None:
        while (self._waiting and self.admin) or (self._watched and self.wakes_ends):
            await asyncio.sleep(self._look_seconds())
            try:
                stale = time.monotonic() - self._info_at >= INFO_SECONDS
                if self.admin and (stale or not self.wakes_ends):
                    await self._look_at_queue()
                elif self.wakes_ends:
                    await self._look_at_tasks()
            except Exception:  # the watcher must go on: files would wait for nothing
                _log.exception("looking at OpenRAG's queue failed")

    async def _look_at_queue(self) -> None:
        started, busy = self._started, self.uploading
        try:
            info = await self._call(self.client.queue_info)
        except AuthRefused:  # not an admin's token: the .env's product instead
            self.admin = False
            self._on_room()
            return
        except Unavailable:
            self._budget = 0
            return
        self._info, self._info_at = info, time.monotonic()
        self._room_is(info.free, busy, started)

    async def _look_at_tasks(self) -> None:
        """The active tasks: the room they leave, and the ends of ours among them."""
        started, busy = self._started, self.uploading
        try:
            active = await self._call(self.client.active_task_ids)
        except AuthRefused:
            self.lists_tasks = False  # files poll their own task, the queue counts the room
            for event in self._watched.values():
                event.set()
            return
        except Unavailable:
            self._budget = 0
            return
        if self._info is not None:
            self._room_is(self._info.total_slots - len(active), busy, started)
        for task_id, event in list(self._watched.items()):
            if task_id not in active:
                event.set()

    def _room_is(self, free: int, busy: int, started: int) -> None:
        """`free` slots as OpenRAG counted them, less the uploads it may not count yet: those
        under way when it answered (`busy`) and those started since (`started` then)."""
        self._budget = max(0, free) - busy - (self._started - started)
        if self._budget > 0 and self._waiting:
            self._on_room()

    # our files

    def started(self) -> None:
        self.uploading += 1
        self._started += 1
        self._budget -= 1

    def acknowledged(self, task_id: str | None) -> None:
        """The upload ended: OpenRAG took it (its task id) or not (None)."""
        self.uploading -= 1
        if task_id is not None:
            self.inside += 1
            self._acknowledged_at[task_id] = time.monotonic()

    def resumed(self, task_id: str) -> None:
        """A task of ours found inside OpenRAG by a coordinator that just started."""
        self.inside += 1
        self._acknowledged_at[task_id] = time.monotonic()

    def watch(self, task_id: str) -> asyncio.Event:
        """An event set when the task may have ended (the file clears it and looks)."""
        event = self._watched.setdefault(task_id, asyncio.Event())
        if self.wakes_ends:
            self._watch()
        return event

    def ended(self, task_id: str) -> None:
        """The file saw its task end (or stopped following it)."""
        self._watched.pop(task_id, None)
        self.inside -= 1
        acknowledged = self._acknowledged_at.pop(task_id, None)
        if acknowledged is not None:
            seconds = time.monotonic() - acknowledged
            self._typical = 0.8 * self._typical + 0.2 * seconds
        if not self.admin:  # the .env bounds the room: it just grew
            self._on_room()
        elif self._waiting:
            self._watch()
