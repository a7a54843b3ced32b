"""Back-pressure for one OpenRAG: how many more of our files may go in now.

OpenRAG accepts every upload however full its pools are, so the limit is ours to keep: never
more of our files in flight inside it than its free capacity. With an admin token that is
`/queue/info`'s `total_slots - active`, less the uploads it may not count yet (those under way
when it answered, or started since); without one, `RAY_POOL_SIZE × RAY_MAX_TASKS_PER_WORKER`
from the .env less our own files in flight.

`/queue/info` is read again when files wait for room: soon after something finished, less and
less often while nothing changes (from 5 ms to 1 s), so the overhead follows OpenRAG's pace.
When it shows tasks finished, the lane asks which are still active (`/queue/tasks`) and wakes
the files whose task is not, so they look at once instead of at their next poll.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from openrag_tui.indexing.errors import Unavailable
from openrag_tui.indexing.openrag.client import AuthRefused, OpenRag, QueueInfo

CHECK_SECONDS = (0.005, 1.0)


@dataclass(frozen=True)
class Limit:
    """The limit in force, where it came from, and what is in flight (for status)."""

    capacity: int  # slots in all (queue/info's total_slots, or the .env's product)
    source: str  # "queue/info" or ".env"
    in_flight: int  # our files uploading or inside OpenRAG
    free: int  # how many more may go in now


class Lane:
    """One OpenRAG's room for our files (one per URL in a coordinator)."""

    def __init__(self, client: OpenRag, fallback_slots: int, env_file: str | None = None) -> None:
        self.client = client
        self.env_file = env_file  # where AUTH_TOKEN is read again
        self.fallback_slots = max(1, fallback_slots)
        self.uploading = 0  # uploads sent, not yet acknowledged
        self.inside = 0  # acknowledged, not yet seen to end
        self._started = 0  # uploads ever started (to know which a queue/info may not count)
        self._budget = 0
        self._info: QueueInfo | None = None
        self._admin = True  # until /queue/info refuses the token's role
        self._next_check = 0.0
        self._pause = CHECK_SECONDS[0]
        self._finished_seen: int | None = None
        self._watched: dict[str, asyncio.Event] = {}  # task id → set when it may have ended

    @property
    def in_flight(self) -> int:
        return self.uploading + self.inside

    def limit(self) -> Limit:
        if self._admin and self._info is not None:
            return Limit(self._info.total_slots, "queue/info", self.in_flight, max(0, self._budget))
        free = max(0, self.fallback_slots - self.in_flight)
        return Limit(self.fallback_slots, ".env", self.in_flight, free)

    async def room(self, waiting: int) -> int:
        """How many uploads may start now (they must be `started()` one by one)."""
        if not self._admin:
            return max(0, self.fallback_slots - self.in_flight)
        now = time.monotonic()
        if self._budget <= 0 and now >= self._next_check and waiting:
            await self._check()
        return max(0, self._budget)

    async def _check(self) -> None:
        started, busy = self._started, self.uploading
        try:
            info = await asyncio.to_thread(self.client.queue_info)
        except AuthRefused:  # not an admin's token: the .env's product instead
            self._admin = False
            return
        except Unavailable:
            self._budget = 0
            self._next_check = time.monotonic() + CHECK_SECONDS[1]
            return
        self._info = info
        self._budget = info.free - busy - (self._started - started)
        finished = info.total_completed + info.total_failed + info.total_cancelled
        changed = self._finished_seen is None or finished != self._finished_seen
        if self._finished_seen is not None and changed:
            await self._wake_ended()
        self._finished_seen = finished
        self._pause = (
            CHECK_SECONDS[0]
            if changed or self._budget > 0
            else min(self._pause * 2, CHECK_SECONDS[1])
        )
        self._next_check = time.monotonic() + self._pause

    async def _wake_ended(self) -> None:
        if not self._watched:
            return
        try:
            active = await asyncio.to_thread(self.client.active_task_ids)
        except (AuthRefused, Unavailable):
            active = set()
        for task_id, event in self._watched.items():
            if task_id not in active:
                event.set()

    def watch(self, task_id: str) -> asyncio.Event:
        """An event set when the task may have ended (the tracker clears it and looks)."""
        return self._watched.setdefault(task_id, asyncio.Event())

    def unwatch(self, task_id: str) -> None:
        self._watched.pop(task_id, None)

    def wait_seconds(self) -> float:
        """When the coordinator should ask `room` again while files wait."""
        if not self._admin:
            return CHECK_SECONDS[1]
        return max(0.0, self._next_check - time.monotonic())

    def started(self) -> None:
        self.uploading += 1
        self._started += 1
        self._budget -= 1

    def acknowledged(self, accepted: bool) -> None:
        self.uploading -= 1
        if accepted:
            self.inside += 1

    def resumed(self) -> None:
        """A file found inside OpenRAG by a coordinator that just started."""
        self.inside += 1

    def ended(self) -> None:
        self.inside -= 1
        if not self._admin:
            return
        self._next_check = 0.0  # room may have opened: look again now
