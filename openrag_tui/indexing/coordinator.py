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
import secrets
import time
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
from openrag_tui.indexing.errors import Unavailable
from openrag_tui.indexing.ledger import Ledger
from openrag_tui.indexing.loaders import DocumentError, is_pdf
from openrag_tui.indexing.openrag.client import AuthRefused
from openrag_tui.indexing.openrag.lane import Lane
from openrag_tui.indexing.openrag.runner import OpenRagRunner, Resubmit
from openrag_tui.indexing.paths import Where
from openrag_tui.indexing.sinks import make_sink
from openrag_tui.indexing.sources import source_digest
from openrag_tui.pools import control
from openrag_tui.pools.spec import supervisor_name
from openrag_tui.pools.supervisor import TaskLost

COORDINATOR_NAME = "ortui-coordinator"
#: seconds between two looks at the pools' sizes (their slots are the files in flight)
LIMIT_SECONDS = 5.0
MIN_IN_FLIGHT = 4
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


def new_batch_id(now: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(2)


class Coordinator:
    """Runs QUEUED files, at most `in_flight` at once, oldest batch first."""

    def __init__(self, where: Where, in_flight: int) -> None:
        self._where = where
        self._in_flight = in_flight
        self._ledger = Ledger(where.ledger, group_commits=True)
        requeued = self._ledger.requeue_running(MAX_FILE_ATTEMPTS, time.time())
        if requeued:
            _log.warning("resuming: %d file(s) left mid-way run again", requeued)
        self._batches: dict[str, BatchProgress] = {}
        self._running: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._pool_files = 0  # of `_running`, those in the pools
        self._wake = asyncio.Event()
        self._outage: str | None = None  # why files wait, while a service does not answer
        self._resume_at = {"pools": 0.0, "openrag": 0.0}
        self._pause = dict.fromkeys(self._resume_at, OUTAGE_PAUSE_SECONDS[0])
        self._auth_retry_at = 0.0
        self._openrag = OpenRagRunner(self._ledger, where.volume, self._wake.set)
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
                free = self._in_flight - self._pool_files
                if free > 0 and now >= self._resume_at["pools"]:
                    for task in self._ledger.queued(free, set(self._running), "pools"):
                        self._start(task)
                if now >= self._resume_at["openrag"]:
                    await self._start_openrag()
                if self._auth_retry_at and time.monotonic() >= self._auth_retry_at:
                    self._unpause(self._ledger.paused_batches())
            except Exception:  # a ledger hiccup must not end the loop: try again shortly
                _log.exception("picking queued files failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

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
                self._start(task, lane)

    def _start(self, task: FileTask, lane: Lane | None = None) -> None:
        """Run the file; it is ours from now on (in `_running`), in the ledger once hashed."""
        key = (task.batch_id, task.index)
        if lane is None:
            self._pool_files += 1
        self._running[key] = asyncio.get_running_loop().create_task(self._run(task, lane))

    def _unpause(self, paused: dict[str, str]) -> None:
        self._openrag.renew_clients()
        for batch_id in paused:
            self._ledger.pause(batch_id, None)
        self._auth_retry_at = 0.0
        self._wake.set()

    async def _run(self, task: FileTask, lane: Lane | None = None) -> None:
        key = (task.batch_id, task.index)
        attempt = task.attempts + 1
        target = "pools" if lane is None else "openrag"
        try:
            if lane is None:
                await self._index(task, attempt)
            else:
                await self._upload(task, attempt, lane)
            self._outage, self._pause[target] = None, OUTAGE_PAUSE_SECONDS[0]
        except DocumentError as error:  # raised here, or in a pool actor (then Ray-wrapped)
            self._fail(key, attempt, plain_reason(error))
        except Unavailable as error:  # not the file's attempt: it waits for the service
            self._wait_for_service(key, attempt, plain_reason(error), target)
        except AuthRefused as error:  # not the file's attempt: the batch waits for a token
            self._ledger.update(*key, state=FileState.QUEUED, attempts=attempt - 1,
                                error=f"waiting: {error}")  # fmt: skip
            self._ledger.pause(task.batch_id, str(error))
            self._auth_retry_at = time.monotonic() + AUTH_RETRY_SECONDS
        except Resubmit as error:
            self._lost(task, attempt, error)
        except (TaskLost, RayActorError) as error:
            self._lost(task, attempt, error)
        except control.PoolsNotDeployed as error:
            # not the file's attempt: wait for the pools without using up its attempts
            self._ledger.update(
                *key, state=FileState.QUEUED, attempts=attempt - 1, error=str(error)
            )
            await asyncio.sleep(NOT_DEPLOYED_PAUSE_SECONDS)
        except RayTaskError as error:  # the file's own task raised: its input is the problem
            self._fail(key, attempt, plain_reason(error))
        except Exception as error:
            _log.exception("indexing %s failed", task.path)
            self._lost(task, attempt, error)
        finally:
            self._running.pop(key, None)
            if lane is None:
                self._pool_files -= 1
            self._wake.set()

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

    async def _index(self, task: FileTask, attempt: int) -> None:
        key = (task.batch_id, task.index)
        batch = self._batch(task.batch_id)
        config = batch.config
        try:  # checked again now: the file may have been swapped since it was submitted
            digest = await asyncio.to_thread(
                source_digest, task.path, self._where.volume, config.max_file_bytes
            )
        except DocumentError as error:  # not claimed yet: cancelled meanwhile stays CANCELLED
            self._ledger.update(
                *key, when=FileState.QUEUED, state=FileState.FAILED, attempts=attempt,
                error=str(error), finished_at=time.time(),
            )  # fmt: skip
            return
        if not await self._claim(task, batch, digest, attempt):
            return
        # nothing of it can be in the vector index: its first attempt, not requeued after a
        # service failed under it (then `error` says so), and no other batch of the partition
        # had it; the claim is then on disk before the write starts (a claim lost in a crash
        # would make a later attempt look first too)
        first_write = (
            config.sink == "milvus"
            and attempt == 1
            and task.error is None
            and not self._ledger.written_before(batch.partition, task.path, key)
        )
        if first_write:
            self._ledger.commit()
        job = work.Job(
            task.path, self._where.relative(task.path), batch.partition, digest,
            batch.metadata, batch.force, config, str(self._where.outputs),
            str(self._where.volume), first_write,
        )  # fmt: skip
        if is_pdf(task.path) and config.pdf_loader != "pdfium":  # models: the marker pool
            document = control.submit(
                "marker", "index.convert", task.path, config.pdf_loader, config.max_file_bytes
            )
            outcome = await control.submit("indexer", "index.finish", job, document)
        else:
            outcome = await control.submit("indexer", "index.document", job)
        self._ledger.update(
            *key,
            state=FileState.COMPLETED,
            pages=outcome.pages,
            chunks=outcome.chunks,
            output=outcome.output,
            finished_at=time.time(),
        )

    async def _claim(
        self,
        task: FileTask,
        batch: BatchProgress,
        digest: str,
        attempt: int,
        claimed: FileState = FileState.CONVERTING,
    ) -> bool:
        """`claimed` (with its hash and attempt) in one commit, unless the partition already
        holds this content: then SKIPPED. While another file is indexing the same content,
        wait: its outcome decides. Check and commit run with no `await` between them, and only
        a file still QUEUED is claimed (it may have been cancelled while it was being hashed)."""
        key = (task.batch_id, task.index)
        queued = FileState.QUEUED
        while True:
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
            await asyncio.sleep(SAME_CONTENT_POLL_SECONDS)

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


def plain_reason(error: BaseException) -> str:
    """The sentence an operator reads for a failed file: the loader's own words, not the chain
    of Ray tracebacks (supervisor → worker → subprocess) the error travelled through."""
    cause = error
    while isinstance(cause, RayTaskError) and cause.cause is not None and cause.cause is not cause:
        cause = cause.cause
    if isinstance(cause, RayTaskError):  # no original exception: its traceback ends with it
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        kind, _, message = (lines[-1] if lines else "").partition(": ")
        if kind.rsplit(".", 1)[-1] in (DocumentError.__name__, Unavailable.__name__):
            return message
        return f"{kind.rsplit('.', 1)[-1]}: {message}" if message else _first_line(cause)
    if isinstance(cause, DocumentError | Unavailable):
        return _first_line(cause)
    return f"{type(cause).__name__}: {_first_line(cause)}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
