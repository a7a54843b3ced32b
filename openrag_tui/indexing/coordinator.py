"""The coordinator: one detached actor per namespace that runs batches through the pools.

It is the ledger's only writer. Each file walks QUEUED → CONVERTING → CHUNKING → WRITING →
COMPLETED, and every step is committed before the next begins, so the ledger always says where a
file stands. A file fails by itself (DocumentError, or its own task raising) → FAILED with the
reason, and the batch goes on; the machinery fails under it (a pool lost the task, an actor
died) → QUEUED again, up to MAX_FILE_ATTEMPTS. If the coordinator itself dies, Ray restarts it
(or the next `index`/`batches` command starts it after a cluster restart) and it re-queues the
files it had in flight: the sink's content-hash check makes their second write a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

from ray.exceptions import RayActorError, RayTaskError

from openrag_tui.indexing import work  # noqa: F401 - registers the pool task kinds
from openrag_tui.indexing.batch import (
    BatchConfig,
    BatchProgress,
    FileState,
    FileTask,
    check_partition,
)
from openrag_tui.indexing.chunking import check_sizes
from openrag_tui.indexing.ledger import Ledger
from openrag_tui.indexing.loaders import DocumentError, is_pdf
from openrag_tui.indexing.paths import Where
from openrag_tui.indexing.sources import source_digest
from openrag_tui.pools import control
from openrag_tui.pools.supervisor import TaskLost

COORDINATOR_NAME = "ortui-coordinator"
MAX_FILE_ATTEMPTS = 3
POLL_SECONDS = 1.0
SAME_CONTENT_POLL_SECONDS = 0.2
NOT_DEPLOYED_PAUSE_SECONDS = 2.0

_log = logging.getLogger(__name__)


def new_batch_id(now: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(2)


class Coordinator:
    """Runs QUEUED files, at most `in_flight` at once, oldest batch first."""

    def __init__(self, where: Where, in_flight: int) -> None:
        self._where = where
        self._in_flight = in_flight
        self._ledger = Ledger(where.ledger)
        requeued = self._ledger.requeue_running(MAX_FILE_ATTEMPTS, time.time())
        if requeued:
            _log.warning("resuming: %d file(s) left mid-way run again", requeued)
        self._batches: dict[str, BatchProgress] = {}
        self._running: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())

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
        """Queued files become CANCELLED; so do files being converted or chunked (their slots
        free at once); a file being written finishes (its write is whole or nothing)."""
        count = self._ledger.cancel(batch_id, time.time())
        for (batch, index), running in list(self._running.items()):
            if batch != batch_id:
                continue
            state = self._ledger.state_of(batch, index)
            if state in (FileState.CONVERTING, FileState.CHUNKING):
                running.cancel()
                count += 1
        return count

    async def retry(self, batch_id: str) -> int:
        count = self._ledger.retry(batch_id, time.time())
        self._wake.set()
        return count

    # The loop

    async def _pump(self) -> None:
        while True:
            self._wake.clear()
            try:
                free = self._in_flight - len(self._running)
                if free > 0:
                    for task in self._ledger.queued(free, set(self._running)):
                        self._start(task)
            except Exception:  # a ledger hiccup must not end the loop: try again shortly
                _log.exception("picking queued files failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    def _start(self, task: FileTask) -> None:
        """Run the file; it is ours from now on (in `_running`), in the ledger once hashed."""
        key = (task.batch_id, task.index)
        self._running[key] = asyncio.get_running_loop().create_task(self._run(task))

    async def _run(self, task: FileTask) -> None:
        key = (task.batch_id, task.index)
        attempt = task.attempts + 1
        try:
            await self._index(task, attempt)
        except DocumentError as error:  # raised here, or in a pool actor (then Ray-wrapped)
            self._fail(key, attempt, plain_reason(error))
        except asyncio.CancelledError:  # its batch was cancelled while it ran
            self._ledger.update(
                *key, state=FileState.CANCELLED, attempts=attempt, finished_at=time.time()
            )
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
        pool = "marker" if is_pdf(task.path) else "indexer"
        document = await control.submit(
            pool, "index.convert", task.path, config.pdf_loader, config.max_file_bytes
        )
        self._ledger.update(*key, state=FileState.CHUNKING)
        chunks = await control.submit(
            "indexer", "index.chunk", document, config.chunk_size, config.chunk_overlap
        )
        self._ledger.update(*key, state=FileState.WRITING)
        output, _written = await control.submit(
            "indexer", "index.write", str(self._where.outputs), task.path,
            self._where.relative(task.path), batch.partition, digest, document, chunks,
            batch.metadata, batch.force,
        )  # fmt: skip
        self._ledger.update(
            *key,
            state=FileState.COMPLETED,
            pages=document.page_count,
            chunks=len(chunks),
            output=output,
            finished_at=time.time(),
        )

    async def _claim(self, task: FileTask, batch: BatchProgress, digest: str, attempt: int) -> bool:
        """CONVERTING (with its hash and attempt) in one commit, unless the partition already
        holds this content: then SKIPPED. While another file is indexing the same content,
        wait: its outcome decides. Check and commit run with no `await` between them, and only
        a file still QUEUED is claimed (it may have been cancelled while it was being hashed)."""
        key = (task.batch_id, task.index)
        queued = FileState.QUEUED
        while True:
            same = None if batch.force else self._ledger.same_content(batch.partition, digest, key)
            now = time.time()
            if same is None:
                return self._ledger.update(
                    *key, when=queued, state=FileState.CONVERTING, attempts=attempt,
                    content_hash=digest, started_at=now, finished_at=None, error=None,
                )  # fmt: skip
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

    def _lost(self, task: FileTask, attempt: int, error: BaseException) -> None:
        """The machinery failed under the file: again, within its budget of attempts."""
        key = (task.batch_id, task.index)
        reason = f"{type(error).__name__}: {_first_line(error)}"
        used = attempt - task.budget
        if used >= MAX_FILE_ATTEMPTS:
            self._fail(key, attempt, f"gave up after {used} attempts: {reason}")
        else:
            self._ledger.update(
                *key, state=FileState.QUEUED, attempts=attempt, error=f"attempt {attempt}: {reason}"
            )


def plain_reason(error: BaseException) -> str:
    """The sentence an operator reads for a failed file: the loader's own words, not the chain
    of Ray tracebacks (supervisor → worker → subprocess) the error travelled through."""
    cause = error
    while isinstance(cause, RayTaskError) and cause.cause is not None and cause.cause is not cause:
        cause = cause.cause
    if isinstance(cause, RayTaskError):  # no original exception: its traceback ends with it
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        kind, _, message = (lines[-1] if lines else "").partition(": ")
        if kind.rsplit(".", 1)[-1] == DocumentError.__name__:
            return message
        return f"{kind.rsplit('.', 1)[-1]}: {message}" if message else _first_line(cause)
    if isinstance(cause, DocumentError):
        return _first_line(cause)
    return f"{type(cause).__name__}: {_first_line(cause)}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
