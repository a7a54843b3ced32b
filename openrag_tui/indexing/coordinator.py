"""The coordinator: one detached actor per namespace that runs batches through the pools.

It is the ledger's only writer. A file is claimed (QUEUED → CONVERTING, with its content hash)
before its work starts, then COMPLETED once its sink holds it; the changes of one turn of the
event loop are committed together when it ends (a claim before an upload at once), so the ledger
always says where a file stands, give or take that turn. A file fails by itself (DocumentError,
or its own task raising) → FAILED with the reason, and the batch goes on; the machinery fails
under it (a pool lost the task, an actor died) → QUEUED again, up to MAX_FILE_ATTEMPTS; a
service it needs does not answer (Unavailable: the vector store, the embedder) → QUEUED again
without using an attempt, and no file starts until a growing pause has passed. If the
coordinator itself dies, Ray restarts it (or the next `index`/`batches` command starts it after
a cluster restart) and it re-queues the files it had in flight: sinks replace a document as a
whole, so a second write leaves no duplicate.

It keeps as many pool tasks running as the pools have slots, and runs them on the indexer's
actors directly, on slots its `PoolClient` leases (no supervisor hop per task). Small files
share a task: a group of them, sized to take about GROUP_SECONDS of a worker's CPU at the pace
files have been going, one after the other in one worker; each keeps its own claim and its own
outcome.

A batch into OpenRAG (`target` openrag) goes through `openrag.runner` instead of the pools: as
many files at once as OpenRAG has room for (`openrag.lane`), each followed until its task ends;
a coordinator that starts follows again the files that were inside OpenRAG. OpenRAG refusing the
token pauses the batch (files QUEUED, attempts untouched) and it is tried again every
AUTH_RETRY_SECONDS, or at once by `batches resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from openrag_tui.config.pools import POOLS
from openrag_tui.indexing import work
from openrag_tui.indexing.batch import (
    BatchConfig,
    BatchProgress,
    FileState,
    FileTask,
    check_partition,
)
from openrag_tui.indexing.chunking import check_sizes
from openrag_tui.indexing.errors import TaskFailed, Unavailable, plain_reason
from openrag_tui.indexing.ledger import Ledger
from openrag_tui.indexing.loaders import DocumentError, is_pdf
from openrag_tui.indexing.openrag.client import AuthRefused
from openrag_tui.indexing.openrag.lane import Lane
from openrag_tui.indexing.openrag.runner import OpenRagRunner, Resubmit
from openrag_tui.indexing.paths import Where
from openrag_tui.indexing.sinks import make_sink
from openrag_tui.indexing.sources import source_digest
from openrag_tui.pools import control
from openrag_tui.pools.lease import PoolClient
from openrag_tui.pools.spec import supervisor_name
from openrag_tui.pools.supervisor import TaskLost

COORDINATOR_NAME = "ortui-coordinator"
#: seconds between two looks at the pools' sizes (their slots are the pool tasks in flight)
LIMIT_SECONDS = 5.0
MIN_IN_FLIGHT = 4
#: files one indexer task may take (small files share a task: its fixed cost, a call each way,
#: is more than a small file's own work), and the CPU time such a task should take about
GROUP_FILES = 16
GROUP_SECONDS = 0.05
MAX_FILE_ATTEMPTS = 3
POLL_SECONDS = 1.0
SAME_CONTENT_POLL_SECONDS = 0.2
NOT_DEPLOYED_PAUSE_SECONDS = 2.0
#: the pause after a service did not answer: doubling from the first to the last
OUTAGE_PAUSE_SECONDS = (1.0, 30.0)
#: a batch paused because OpenRAG refused the token tries again after this
AUTH_RETRY_SECONDS = 30.0
#: queued files of batches into OpenRAG looked at per round (the lanes take what fits)
OPENRAG_PEEK = 256

_log = logging.getLogger(__name__)


def groups(
    tasks: list[FileTask], free: int, size: int, to_marker: Callable[[FileTask], bool]
) -> list[list[FileTask]]:
    """Queued files as at most `free` pool tasks, in order: a PDF for marker alone, the others
    in groups of at most `size`, spread evenly over the free slots (so the end of a batch is
    not left to a few of them)."""
    per = max(1, min(size, -(-len(tasks) // max(free, 1))))
    found: list[list[FileTask]] = []
    current: list[FileTask] = []
    for task in tasks:
        if to_marker(task):
            if len(found) + bool(current) >= free:
                break
            found.append([task])
            continue
        if not current and len(found) >= free:
            break
        current.append(task)
        if len(current) == per:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def new_batch_id(now: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(2)


class Coordinator:
    """Runs QUEUED files, oldest batch first, in at most `in_flight` pool tasks at once."""

    def __init__(self, where: Where, in_flight: int) -> None:
        self._where = where
        self._in_flight = in_flight
        self._ledger = Ledger(where.ledger, group_commits=True)
        requeued = self._ledger.requeue_running(MAX_FILE_ATTEMPTS, time.time())
        if requeued:
            _log.warning("resuming: %d file(s) left mid-way run again", requeued)
        self._batches: dict[str, BatchProgress] = {}
        self._running: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._pool_tasks = 0  # pool tasks running for `_running`'s files (a group is one)
        self._file_seconds: float | None = None  # a file's CPU in a worker, on average
        self._wake = asyncio.Event()
        self._outage: str | None = None  # why files wait, while a service does not answer
        self._resume_at = {"pools": 0.0, "openrag": 0.0}
        self._pause = dict.fromkeys(self._resume_at, OUTAGE_PAUSE_SECONDS[0])
        self._auth_retry_at = 0.0
        self._openrag = OpenRagRunner(self._ledger, where.volume, self._wake.set)
        self._indexer = PoolClient("indexer", holder=COORDINATOR_NAME)
        self._volume_prefix = os.path.join(where.volume, "")
        self._outputs = str(where.outputs)
        loop = asyncio.get_running_loop()
        for task in self._ledger.in_openrag():
            key = (task.batch_id, task.index)
            self._running[key] = loop.create_task(self._resume_openrag(task))
        self._pump_task = loop.create_task(self._pump())
        self._limit_task = loop.create_task(self._follow_pool_sizes())

    # The driver's calls

    async def where(self) -> Where:
        return self._where

    async def submit(
        self,
        paths: list[str],
        partition: str,
        metadata: dict[str, Any],
        force: bool,
        config: BatchConfig,
    ) -> str:
        """Record the batch, every file QUEUED, in one transaction; returns its id."""
        check_partition(partition)
        check_sizes(config.chunk_size, config.chunk_overlap)
        real = [str(self._where.inside(path)) for path in paths]
        now = time.time()
        batch_id = new_batch_id(now)
        self._ledger.add_batch(batch_id, partition, metadata, force, config, real, now)
        self._wake.set()
        return batch_id

    async def cancel(self, batch_id: str) -> int:
        """Queued files become CANCELLED; files being processed finish (a sink's write of a
        document is whole or nothing, never half), except inside OpenRAG: their tasks are asked
        to stop (`DELETE /indexer/task/{id}`) and end CANCELLED when OpenRAG says so."""
        count = self._ledger.cancel(batch_id, time.time())
        batch = self._ledger.batch(batch_id)
        if batch.target == "openrag":
            count += await self._openrag.cancel(batch, self._ledger.files(batch.batch_id))
        return count

    async def resume(self) -> int:
        """Batches paused because OpenRAG refused the token go on now (AUTH_TOKEN is read
        again); how many."""
        paused = self._ledger.paused_batches()
        self._unpause(paused)
        return len(paused)

    async def openrag_limits(self) -> dict[str, dict[str, Any]]:
        """Per OpenRAG URL: the limit in force, its source and our files in flight."""
        return self._openrag.limits()

    async def forget(
        self, partition: str, relatives: list[str], sink: str, vdb_uri: str, collection: str
    ) -> int:
        """Remove these documents from the sink, and from what the ledger remembers as indexed:
        the same content indexed again later is not SKIPPED."""
        removed = await asyncio.to_thread(
            make_sink(sink, self._where.outputs, self._where.volume, vdb_uri, collection).forget,
            partition,
            relatives,
        )
        self._ledger.forget(partition, [str(self._where.volume / r) for r in relatives])
        return removed

    async def outage(self) -> str | None:
        """Why files wait, while a service they need does not answer (None: nothing waits)."""
        return self._outage

    async def retry(self, batch_id: str) -> int:
        count = self._ledger.retry(batch_id, time.time())
        self._wake.set()
        return count

    # The loop

    async def _pump(self) -> None:
        while True:
            self._wake.clear()
            try:
                now = time.monotonic()
                free = self._in_flight - self._pool_tasks
                if free > 0 and now >= self._resume_at["pools"]:
                    busy = set(self._running)
                    queued = self._ledger.queued(free * self._group_size(), busy, "pools")
                    for group in groups(queued, free, self._group_size(), self._to_marker):
                        self._start(group)
                if now >= self._resume_at["openrag"]:
                    await self._start_openrag()
                if self._auth_retry_at and time.monotonic() >= self._auth_retry_at:
                    self._unpause(self._ledger.paused_batches())
            except Exception:  # a ledger hiccup must not end the loop: try again shortly
                _log.exception("picking queued files failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    def _group_size(self) -> int:
        """Files one indexer task takes: as many as take about GROUP_SECONDS of a worker's CPU
        at the pace files have been going (one while that is not known), at most GROUP_FILES."""
        if self._file_seconds is None:
            return 1
        return max(1, min(GROUP_FILES, int(GROUP_SECONDS / max(self._file_seconds, 1e-6))))

    def _to_marker(self, task: FileTask) -> bool:
        """A PDF converted with models: the marker pool first."""
        return is_pdf(task.path) and self._batch(task.batch_id).config.pdf_loader != "pdfium"

    async def _follow_pool_sizes(self) -> None:
        """Keep as many files in flight as the pools' slots, as they are resized (by hand or
        by the autopilot): a grown pool gets more files, a shrunk one no more than it runs."""
        while True:
            await asyncio.sleep(LIMIT_SECONDS)
            with contextlib.suppress(Exception):  # not deployed, or a supervisor restarting
                slots = 0
                for pool in POOLS:
                    state = await ray.get_actor(supervisor_name(pool)).status.remote()
                    slots += state.target * state.slots
                limit = max(MIN_IN_FLIGHT, slots)
                if limit != self._in_flight:
                    self._in_flight = limit
                    self._wake.set()

    async def _start_openrag(self) -> None:
        """Start as many queued files of batches into OpenRAG as their OpenRAG has room for
        (a lane whose room grows wakes the pump)."""
        waiting: dict[int, tuple[Lane, list[FileTask]]] = {}
        for task in self._ledger.queued(OPENRAG_PEEK, set(self._running), "openrag"):
            lane = self._openrag.lane(self._batch(task.batch_id))
            waiting.setdefault(id(lane), (lane, []))[1].append(task)
        for lane, tasks in waiting.values():
            room = await lane.room(len(tasks))  # its watcher wakes the pump when it grows
            for task in tasks[:room]:
                lane.started()
                self._start([task], lane)

    def _start(self, tasks: list[FileTask], lane: Lane | None = None) -> None:
        """Run the files (into OpenRAG: one); they are ours from now on (in `_running`), in
        the ledger once hashed."""
        if lane is None:
            self._pool_tasks += 1
            runner = self._run_pools(tasks)
        else:
            runner = self._run(tasks[0], lane)
        job = asyncio.get_running_loop().create_task(runner)
        for task in tasks:
            self._running[(task.batch_id, task.index)] = job

    def _unpause(self, paused: dict[str, str]) -> None:
        self._openrag.renew_clients()
        for batch_id in paused:
            self._ledger.pause(batch_id, None)
        self._auth_retry_at = 0.0
        self._wake.set()

    async def _run(self, task: FileTask, lane: Lane) -> None:
        """One file into OpenRAG."""
        attempt = task.attempts + 1
        try:
            await self._upload(task, attempt, lane)
            self._settle(task, attempt, None, "openrag")
        except Exception as error:
            self._settle(task, attempt, error, "openrag")
        finally:
            self._running.pop((task.batch_id, task.index), None)
            self._wake.set()

    async def _run_pools(self, tasks: list[FileTask]) -> None:
        """Files into our pools: a PDF for marker alone, the others as one indexer task."""
        try:
            if len(tasks) == 1 and self._to_marker(tasks[0]):
                await self._convert_and_index(tasks[0])
            else:
                await self._index(tasks)
        except Exception:  # each file was settled; this is a bug of ours: said, not fatal
            _log.exception("indexing %d file(s) failed", len(tasks))
        finally:
            self._pool_tasks -= 1
            this = asyncio.current_task()
            for task in tasks:  # a file handed to a task of its own is that task's
                key = (task.batch_id, task.index)
                if self._running.get(key) is this:
                    del self._running[key]
            self._wake.set()

    def _settle(
        self, task: FileTask, attempt: int, result: work.Outcome | BaseException | None,
        target: str = "pools",
    ) -> None:  # fmt: skip
        """Record where a file stands once its attempt ended: an Outcome (or None, OpenRAG's
        runner recorded it) completed it; an error fails it, queues it again, or makes it (or
        its batch, or its target) wait, by what kind of error it is."""
        key = (task.batch_id, task.index)
        if result is None or isinstance(result, work.Outcome):
            self._outage, self._pause[target] = None, OUTAGE_PAUSE_SECONDS[0]
            if result is not None:
                self._completed(key, result)
            return
        error = result  # tested in this order: Ray's errors are also instances of their cause
        if isinstance(error, DocumentError):  # the file's own: raised here or in a worker
            self._fail(key, attempt, plain_reason(error))
        elif isinstance(error, Unavailable):  # not the file's attempt: it waits for the service
            self._wait_for_service(key, attempt, plain_reason(error), target)
        elif isinstance(error, AuthRefused):  # not the file's attempt: the batch waits
            self._ledger.update(*key, state=FileState.QUEUED, attempts=attempt - 1,
                                error=f"waiting: {error}")  # fmt: skip
            self._ledger.pause(task.batch_id, str(error))
            self._auth_retry_at = time.monotonic() + AUTH_RETRY_SECONDS
        elif isinstance(error, Resubmit | TaskLost | RayActorError):
            self._lost(task, attempt, error)
        elif isinstance(error, control.PoolsNotDeployed):
            # not the file's attempt: no file starts until the pools may be there
            self._ledger.update(
                *key, state=FileState.QUEUED, attempts=attempt - 1, error=str(error)
            )
            self._resume_at[target] = time.monotonic() + NOT_DEPLOYED_PAUSE_SECONDS
        elif isinstance(error, TaskFailed | RayTaskError):  # the file's own task raised
            self._fail(key, attempt, plain_reason(error))
        else:
            _log.error("indexing %s failed", task.path, exc_info=error)
            self._lost(task, attempt, error)

    def _completed(self, key: tuple[str, int], outcome: work.Outcome) -> None:
        self._ledger.update(
            *key, state=FileState.COMPLETED, pages=outcome.pages, chunks=outcome.chunks,
            output=outcome.output, finished_at=time.time(),
        )  # fmt: skip
        if outcome.seconds:  # how fast files go: the next groups' size
            last = self._file_seconds
            seconds = outcome.seconds
            self._file_seconds = seconds if last is None else 0.8 * last + 0.2 * seconds

    async def _upload(self, task: FileTask, attempt: int, lane: Lane) -> None:
        """A file into OpenRAG: claimed UPLOADING once read and hashed (SKIPPED when the
        partition already has its content from us), then uploaded and followed."""
        batch = self._batch(task.batch_id)

        async def claim(digest: str) -> bool:
            return await self._claim(task, batch, digest, attempt, FileState.UPLOADING)

        await self._openrag.upload(task, batch, claim, lane)

    async def _resume_openrag(self, task: FileTask) -> None:
        """A file a previous coordinator left uploading or inside OpenRAG."""
        key = (task.batch_id, task.index)
        try:
            await self._openrag.resume(task, self._batch(task.batch_id))
        except Resubmit as error:
            self._lost(task, task.attempts, error)
        except Exception as error:
            _log.exception("following %s again failed", task.path)
            self._lost(task, task.attempts, error)
        finally:
            self._running.pop(key, None)
            self._wake.set()

    async def _index(self, tasks: list[FileTask]) -> None:
        """Files read, converted, chunked, embedded and written by one indexer task, each
        claimed first (once hashed) and settled by its own result."""
        bounds = [self._batch(task.batch_id).config.max_file_bytes for task in tasks]
        digests = await asyncio.to_thread(self._digests, tasks, bounds)
        started: list[tuple[FileTask, int]] = []
        jobs: list[work.Job] = []
        for task, digest in zip(tasks, digests, strict=True):
            attempt = task.attempts + 1
            if isinstance(digest, DocumentError):
                self._refused(task, attempt, digest)
                continue
            if len(tasks) == 1:  # alone: wait for a file of the same content, if need be
                claimed = await self._claim(task, self._batch(task.batch_id), digest, attempt)
            else:
                claimed = self._try_claim(task, self._batch(task.batch_id), digest, attempt)
                if claimed is None:  # a file of the same content runs: it waits on its own
                    self._start([task])
                    continue
            if claimed:
                started.append((task, attempt))
                jobs.append(self._job(task, digest, attempt))
        if any(job.first_write for job in jobs):
            self._ledger.commit()  # see `_job`
        if not jobs:
            return
        try:
            results: list[work.Outcome | Exception] = await self._indexer.run(
                "index.documents", jobs
            )
        except Exception as error:
            results = [error] * len(jobs)
        for (task, attempt), result in zip(started, results, strict=True):
            self._settle(task, attempt, result)

    async def _convert_and_index(self, task: FileTask) -> None:
        """A PDF converted in the marker pool (models), then finished by the indexer pool; the
        Document goes from one to the other by reference, never through here."""
        attempt = task.attempts + 1
        config = self._batch(task.batch_id).config
        (digest,) = await asyncio.to_thread(self._digests, [task], [config.max_file_bytes])
        if isinstance(digest, DocumentError):
            self._refused(task, attempt, digest)
            return
        if not await self._claim(task, self._batch(task.batch_id), digest, attempt):
            return
        job = self._job(task, digest, attempt)
        if job.first_write:
            self._ledger.commit()
        try:
            document = control.submit(
                "marker", "index.convert", task.path, config.pdf_loader, config.max_file_bytes
            )
            result: work.Outcome | Exception = await self._indexer.run(
                "index.finish", job, document
            )
        except Exception as error:
            result = error
        self._settle(task, attempt, result)

    def _digests(self, tasks: list[FileTask], bounds: list[int]) -> list[str | DocumentError]:
        """Each file's content hash, checked again now (it may have been swapped since it was
        submitted), or why it is refused; in a worker thread, touching no ledger."""
        found: list[str | DocumentError] = []
        for task, bound in zip(tasks, bounds, strict=True):
            try:
                found.append(source_digest(task.path, self._where.volume, bound))
            except DocumentError as error:
                found.append(error)
        return found

    def _refused(self, task: FileTask, attempt: int, error: DocumentError) -> None:
        """FAILED before it was claimed (a file cancelled meanwhile stays CANCELLED)."""
        self._ledger.update(
            task.batch_id, task.index, when=FileState.QUEUED, state=FileState.FAILED,
            attempts=attempt, error=str(error), finished_at=time.time(),
        )  # fmt: skip

    def _job(self, task: FileTask, digest: str, attempt: int) -> work.Job:
        """What a worker needs for the file. Its write is a first one when nothing of it can
        be in the vector index: its first attempt, not requeued after a service failed under
        it (then `error` says so), and no other batch of the partition had it; its claim must
        then be on disk before the write starts (a claim lost in a crash would make a later
        attempt look first too): the caller commits."""
        batch = self._batch(task.batch_id)
        config = batch.config
        key = (task.batch_id, task.index)
        first_write = (
            config.sink == "milvus"
            and attempt == 1
            and task.error is None
            and not self._ledger.written_before(batch.partition, task.path, key)
        )
        # the path is the real one recorded at submission (inside the volume), checked again
        # by its hashing
        relative = task.path.removeprefix(self._volume_prefix)
        return work.Job(
            task.path, relative, batch.partition, digest, batch.metadata, batch.force, config,
            self._outputs, str(self._where.volume), first_write,
        )  # fmt: skip

    async def _claim(
        self,
        task: FileTask,
        batch: BatchProgress,
        digest: str,
        attempt: int,
        claimed: FileState = FileState.CONVERTING,
    ) -> bool:
        """`_try_claim`, and while another file is indexing the same content, wait: its
        outcome decides."""
        while (mine := self._try_claim(task, batch, digest, attempt, claimed)) is None:
            await asyncio.sleep(SAME_CONTENT_POLL_SECONDS)
        return mine

    def _try_claim(
        self,
        task: FileTask,
        batch: BatchProgress,
        digest: str,
        attempt: int,
        claimed: FileState = FileState.CONVERTING,
    ) -> bool | None:
        """`claimed` (with its hash and attempt), unless the partition already holds this
        content: then SKIPPED (False); None while another file is indexing the same content.
        Check and update run with no `await` between them, and only a file still QUEUED is
        claimed (it may have been cancelled while it was being hashed)."""
        key = (task.batch_id, task.index)
        queued = FileState.QUEUED
        same = (
            None
            if batch.force
            else self._ledger.same_content(batch.partition, digest, key, batch.target)
        )
        now = time.time()
        if same is None:
            mine = self._ledger.update(
                *key, when=queued, state=claimed, attempts=attempt,
                content_hash=digest, started_at=now, finished_at=None, error=None,
            )  # fmt: skip
            if mine and claimed is FileState.UPLOADING:
                self._ledger.commit()  # on disk before the upload leaves: never twice
            return mine
        if same.state is FileState.COMPLETED:
            self._ledger.update(
                *key, when=queued, state=FileState.SKIPPED, attempts=attempt,
                content_hash=digest, started_at=now, finished_at=now,
                error=f"same content already indexed from {same.path}",
            )  # fmt: skip
            return False
        return None

    def _batch(self, batch_id: str) -> BatchProgress:
        if batch_id not in self._batches:
            self._batches[batch_id] = self._ledger.batch(batch_id)
        return self._batches[batch_id]

    def _fail(self, key: tuple[str, int], attempt: int, reason: str) -> None:
        self._ledger.update(
            *key, state=FileState.FAILED, attempts=attempt, error=reason, finished_at=time.time()
        )

    def _wait_for_service(
        self, key: tuple[str, int], attempt: int, reason: str, target: str = "pools"
    ) -> None:
        """Queue the file again as it was, and start no file of the target before a growing
        pause."""
        self._ledger.update(
            *key, state=FileState.QUEUED, attempts=attempt - 1, error=f"waiting: {reason}"
        )
        self._outage = reason
        pause = self._pause[target]
        self._resume_at[target] = max(self._resume_at[target], time.monotonic() + pause)
        self._pause[target] = min(pause * 2, OUTAGE_PAUSE_SECONDS[1])
        _log.warning("a service does not answer, files wait %.0f s: %s", pause, reason)

    def _lost(self, task: FileTask, attempt: int, error: BaseException) -> None:
        """The machinery failed under the file: again, within its budget of attempts."""
        key = (task.batch_id, task.index)
        reason = f"{type(error).__name__}: {_first_line(error)}"
        used = attempt - task.budget
        if used >= MAX_FILE_ATTEMPTS:
            self._fail(key, attempt, f"gave up after {used} attempts: {reason}")
        else:
            self._ledger.update(
                *key, state=FileState.QUEUED, attempts=attempt,
                error=f"attempt {attempt}: {reason}", task_id=None,
            )  # fmt: skip


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
