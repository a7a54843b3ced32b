"""One file of a batch into OpenRAG, from our queue to its task's end, run by the coordinator.

The file is read once (bounded, never through a link swapped in) and what was hashed is what is
uploaded, with the batch's metadata and our source path. `file_id` is its path inside
DATA_VOLUME (`client.file_id_of`), stable across resumes. 409 → SKIPPED with OpenRAG's words, or
with `--force` a PUT replaces it. Once OpenRAG acknowledges the upload, the task id is committed
with the file's state in one write; from then on the file is followed, never uploaded again,
unless OpenRAG forgets the task (404: retention passed, or a restart) and does not have the
file: then it is queued again, using one attempt.

Errors before the acknowledgement leave the file QUEUED for the coordinator to decide (an
outage: wait, no attempt used; the token refused: the batch pauses); errors while following
only slow the polling down: the task runs in OpenRAG whatever we see of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from openrag_tui.indexing.batch import BatchProgress, FileState, FileTask, state_of_task
from openrag_tui.indexing.errors import Unavailable
from openrag_tui.indexing.ledger import Ledger
from openrag_tui.indexing.openrag.client import (
    AlreadyThere,
    AuthRefused,
    NotThere,
    OpenRag,
    TaskGone,
    file_id_of,
    token_of,
)
from openrag_tui.indexing.openrag.lane import Lane
from openrag_tui.indexing.sources import check_inside, read_source

#: how often a file inside OpenRAG looks at its task when the lane cannot tell it the task
#: ended (no admin role): from soon after the upload, growing to the cap
POLL_SECONDS = (0.01, 2.0)
POLL_GROWTH = 1.5
#: when the lane tells it, a file still looks this often, in case a wake was missed
SAFETY_POLL_SECONDS = 5.0
#: while OpenRAG does not answer a poll: growing to this
OUTAGE_POLL_SECONDS = 30.0
THREADS = 32
T = TypeVar("T")

_log = logging.getLogger(__name__)


class Resubmit(Exception):
    """OpenRAG forgot the task and does not have the file: queue it again (one attempt)."""


class OpenRagRunner:
    """The coordinator's side of every batch into OpenRAG: one lane per OpenRAG URL."""

    def __init__(
        self, ledger: Ledger, volume: Path, on_room: Callable[[], None] = lambda: None
    ) -> None:
        self._ledger = ledger
        self._volume = volume
        self._on_room = on_room  # the coordinator's: a lane may take more files now
        self._lanes: dict[str, Lane] = {}
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="openrag")

    def lane(self, batch: BatchProgress) -> Lane:
        config = batch.config
        url = config.openrag_url or ""
        if url not in self._lanes:
            client = OpenRag(url, token_of(config.env_file))
            self._lanes[url] = Lane(
                client, config.openrag_slots, config.env_file, self._call, self._on_room
            )
        return self._lanes[url]

    def renew_clients(self) -> None:
        """Read AUTH_TOKEN again (after OpenRAG refused it): the next requests use it."""
        for lane in self._lanes.values():
            lane.client = OpenRag(lane.client.url, token_of(lane.env_file))

    def limits(self) -> dict[str, dict[str, Any]]:
        return {url: vars(lane.limit()) for url, lane in self._lanes.items()}

    async def _call(self, do: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, do, *args)

    # one file

    async def upload(
        self,
        task: FileTask,
        batch: BatchProgress,
        claim: Callable[[str], Awaitable[bool]],
        lane: Lane,
    ) -> None:
        """Read, claim (`claim(digest)`: whether the file is ours to upload now), upload,
        record the task, then follow it to its end. The lane's `started()` was counted by the
        caller; this counts the acknowledgement, whatever happens."""
        key = (task.batch_id, task.index)
        task_id: str | None = None
        try:
            content = await self._call(self._read, task.path, batch.config.max_file_bytes)
            if not await claim(hashlib.sha256(content).hexdigest()):
                return
            file_id = file_id_of(Path(task.path).relative_to(self._volume).as_posix())
            metadata = {**batch.metadata, "source": task.path, "file_id": file_id}
            send = (batch.partition, file_id, Path(task.path).name, content, metadata)
            try:
                task_id = await self._call(lane.client.upload, *send, batch.force)
            except NotThere:  # --force, but OpenRAG does not have it (yet): a first upload
                task_id = await self._call(lane.client.upload, *send, False)
        except AlreadyThere as there:
            self._ledger.update(*key, state=FileState.SKIPPED, finished_at=time.time(),
                                error=f"OpenRAG: {there}")  # fmt: skip
            return
        finally:
            lane.acknowledged(task_id)
        self._ledger.update(
            *key, state=FileState.SUBMITTED, task_id=task_id, openrag_state="QUEUED"
        )
        self._ledger.commit()  # the task id on disk at once: a restart follows it, not guesses
        await self.follow(task, batch, task_id, "QUEUED")

    def _read(self, path: str, max_bytes: int) -> bytes:
        check_inside(path, self._volume)
        return read_source(path, max_bytes)

    async def follow(
        self, task: FileTask, batch: BatchProgress, task_id: str, last: str | None
    ) -> None:
        """Poll the task until it ends, recording each state it is seen in; its end is the
        file's end. Resubmit when OpenRAG forgot it and does not have the file."""
        lane = self.lane(batch)
        key = (task.batch_id, task.index)
        pause = SAFETY_POLL_SECONDS if lane.wakes_ends else POLL_SECONDS[0]
        woken = lane.watch(task_id)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), pause)
                woken.clear()
                try:
                    state = await self._call(lane.client.task_state, task_id)
                except TaskGone:
                    await self._forgotten(task, batch, lane)
                    return
                except (Unavailable, AuthRefused) as error:
                    _log.warning("following task %s of %s: %s", task_id, task.path, error)
                    pause = min(max(pause * 2, 1.0), OUTAGE_POLL_SECONDS)
                    continue
                if state != last:
                    last = state
                    if await self._record(key, lane, task_id, state):
                        return
                if lane.wakes_ends:
                    pause = SAFETY_POLL_SECONDS
                else:
                    pause = min(pause * POLL_GROWTH, POLL_SECONDS[1])
        finally:
            lane.ended(task_id)

    async def _record(self, key: tuple[str, int], lane: Lane, task_id: str, state: str) -> bool:
        """Write what OpenRAG said; whether the task has ended."""
        now = time.time()
        if state == "COMPLETED":
            self._ledger.update(*key, state=FileState.COMPLETED, openrag_state=state,
                                finished_at=now, error=None)  # fmt: skip
            return True
        if state == "FAILED":
            try:
                reason = await self._call(lane.client.task_failure, task_id)
            except (Unavailable, AuthRefused) as error:
                reason = f"OpenRAG said FAILED; its reason could not be read ({error})"
            self._ledger.update(*key, state=FileState.FAILED, openrag_state=state,
                                finished_at=now, error=reason)  # fmt: skip
            return True
        if state == "CANCELLED":
            self._ledger.update(*key, state=FileState.CANCELLED, openrag_state=state,
                                finished_at=now)  # fmt: skip
            return True
        self._ledger.update(*key, state=state_of_task(state), openrag_state=state)
        return False

    async def _forgotten(self, task: FileTask, batch: BatchProgress, lane: Lane) -> None:
        """404 for our task: done if OpenRAG has the file, else queued again (one attempt)."""
        relative = Path(task.path).relative_to(self._volume).as_posix()
        while True:
            try:
                present = await self._call(
                    lane.client.has_file, batch.partition, file_id_of(relative)
                )
                break
            except (Unavailable, AuthRefused) as error:
                _log.warning("asking OpenRAG for %s: %s", task.path, error)
                await asyncio.sleep(OUTAGE_POLL_SECONDS)
        key = (task.batch_id, task.index)
        if present:
            self._ledger.update(*key, state=FileState.COMPLETED, finished_at=time.time(),
                                openrag_state="COMPLETED", error=None)  # fmt: skip
            return
        raise Resubmit("OpenRAG forgot its task and does not have the file: uploaded again")

    async def resume(self, task: FileTask, batch: BatchProgress) -> None:
        """After a coordinator restart: follow a file that was inside OpenRAG; one that was
        uploading with no acknowledgement recorded is COMPLETED if OpenRAG has it, else
        Resubmit."""
        if task.task_id:
            self.lane(batch).resumed(task.task_id)
            await self.follow(task, batch, task.task_id, task.openrag_state)
            return
        await self._forgotten(task, batch, self.lane(batch))

    async def cancel(self, batch: BatchProgress, files: list[FileTask]) -> int:
        """Ask OpenRAG to cancel our tasks of the batch (they end as CANCELLED, or COMPLETED
        if they finish first); how many it took."""
        lane = self.lane(batch)
        asked = 0
        for task in files:
            if task.task_id and task.state.value not in ("COMPLETED", "FAILED", "CANCELLED"):
                try:
                    asked += bool(await self._call(lane.client.cancel, task.task_id))
                except (Unavailable, AuthRefused, TaskGone) as error:
                    _log.warning("cancelling task %s: %s", task.task_id, error)
        return asked
