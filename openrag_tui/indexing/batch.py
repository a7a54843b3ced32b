"""Batches and the files in them, as plain data: states, progress and rates (no I/O).

A file's state only moves forward to a final state; the ledger stores these, and readers (the
CLI, the panel) compute progress from them, never from an actor's memory.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from openrag_tui.config import Settings

PARTITION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class FileState(StrEnum):
    """Ours for the pools; for a batch into OpenRAG, UPLOADING (we are posting it), then
    OpenRAG's own task states as they are, except its QUEUED, shown SUBMITTED (QUEUED is ours:
    not sent yet)."""

    QUEUED = "QUEUED"
    CONVERTING = "CONVERTING"
    CHUNKING = "CHUNKING"
    WRITING = "WRITING"
    UPLOADING = "UPLOADING"
    SUBMITTED = "SUBMITTED"
    SERIALIZING = "SERIALIZING"
    INSERTING = "INSERTING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {FileState.COMPLETED, FileState.FAILED, FileState.SKIPPED, FileState.CANCELLED}
)
RUNNING_STATES = frozenset({FileState.CONVERTING, FileState.CHUNKING, FileState.WRITING})
#: a file of a batch into OpenRAG between our upload and its task's end
OPENRAG_STATES = frozenset(
    {FileState.UPLOADING, FileState.SUBMITTED, FileState.SERIALIZING, FileState.CHUNKING,
     FileState.INSERTING}
)  # fmt: skip
TARGETS = ("pools", "openrag")


def state_of_task(openrag_state: str) -> FileState:
    """Our record of an OpenRAG task state (its QUEUED is our SUBMITTED)."""
    if openrag_state == "QUEUED":
        return FileState.SUBMITTED
    try:
        return FileState(openrag_state)
    except ValueError:  # a state a newer OpenRAG added: still in flight there
        return FileState.SUBMITTED


#: a batch ends well when every file completed or was skipped
GOOD_STATES = frozenset({FileState.COMPLETED, FileState.SKIPPED})


class BadPartition(ValueError):
    """A partition name that cannot be a folder name."""


def check_partition(name: str) -> str:
    """Partitions become folders: letters, digits, `_ . -`, not starting with a dot."""
    if not PARTITION.fullmatch(name):
        raise BadPartition(
            f"partition {name!r} must be 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class BatchConfig:
    """How a batch's files are read, converted and chunked; stored with the batch, so a resumed
    batch runs exactly as it was submitted even if the .env changed since (see `config_of`)."""

    pdf_loader: str
    chunk_size: int
    chunk_overlap: int
    max_file_mb: int
    sink: str = "files"  # a batch stored before sinks were recorded wrote files
    collection: str = "openrag_tui"
    vdb_uri: str = "http://127.0.0.1:19530"
    embedder: str = "wordllama"
    embedder_model: str | None = None
    embedder_url: str | None = None
    env_file: str | None = None  # the shared .env: where a worker reads EMBEDDER_API_KEY
    target: str = "pools"  # or "openrag": uploaded to OpenRAG's API, which indexes it
    openrag_url: str | None = None
    openrag_slots: int = 5  # RAY_POOL_SIZE × RAY_MAX_TASKS_PER_WORKER: without /queue/info

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb << 20

    @property
    def needs_vectors(self) -> bool:
        return self.sink == "milvus"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> BatchConfig:
        """A stored config; what an older batch did not store takes today's defaults (and the
        `files` sink, the only one then)."""
        known = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in stored.items() if k in known}
        return dataclasses.replace(config_of(Settings()), **{"sink": "files", **given})


def config_of(
    settings: Settings, env_file: str | None = None, target: str | None = None
) -> BatchConfig:
    """The batch settings the .env holds now (its defaults are Settings' own); `target`
    overrides OPENRAG_TUI_TARGET."""
    return BatchConfig(
        pdf_loader=settings.pdf_loader,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        max_file_mb=settings.max_file_mb,
        sink=settings.sink,
        collection=settings.collection,
        vdb_uri=settings.vdb_uri,
        embedder=settings.embedder_kind,
        embedder_model=settings.embedder_model_name,
        embedder_url=settings.embedder_base_url,
        env_file=env_file,
        target=target or settings.target,
        openrag_url=settings.openrag_api,
        openrag_slots=settings.ray_pool_size * settings.ray_max_tasks_per_worker,
    )


@dataclass(frozen=True)
class FileTask:
    """One file of one batch, as the ledger has it. Times are Unix seconds."""

    batch_id: str
    index: int
    path: str
    state: FileState
    attempts: int = 0  # every attempt, retries included
    budget: int = 0  # attempts made before the last retry: the limit counts from here
    error: str | None = None
    content_hash: str | None = None
    pages: int | None = None
    chunks: int | None = None
    output: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    task_id: str | None = None  # OpenRAG's task, for a batch into OpenRAG
    openrag_state: str | None = None  # that task's state as OpenRAG last said it

    @property
    def seconds(self) -> float | None:
        """Time from the last start to the end (None while unfinished)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "index": self.index,
            "path": self.path,
            "state": self.state.value,
            "attempts": self.attempts,
            "error": self.error,
            "content_hash": self.content_hash,
            "pages": self.pages,
            "chunks": self.chunks,
            "output": self.output,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "task_id": self.task_id,
            "openrag_state": self.openrag_state,
        }


@dataclass(frozen=True)
class BatchProgress:
    """One batch at a glance: per-state counts, rates over its run so far, and an ETA."""

    batch_id: str
    partition: str
    created_at: float
    metadata: dict[str, Any]
    force: bool
    config: BatchConfig
    counts: dict[str, int] = field(default_factory=dict)
    pages_done: int = 0
    first_start: float | None = None
    last_finish: float | None = None
    retried_at: float | None = None  # the last `batches retry`: rates count from there
    done_since_retry: int = 0
    pages_since_retry: int = 0
    paused: str | None = None  # why no file of it starts now (OpenRAG refused the token)

    @property
    def target(self) -> str:
        return self.config.target

    @property
    def in_flight(self) -> int:
        """Files being worked on now (for a batch into OpenRAG: inside OpenRAG)."""
        running = OPENRAG_STATES if self.target == "openrag" else RUNNING_STATES
        return sum(self.counts.get(state.value, 0) for state in running)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return sum(self.counts.get(state.value, 0) for state in FINAL_STATES)

    @property
    def finished(self) -> bool:
        return self.done == self.total

    @property
    def succeeded(self) -> bool:
        """Finished, with every file completed or skipped."""
        good = sum(self.counts.get(state.value, 0) for state in GOOD_STATES)
        return self.finished and good == self.total

    @property
    def state(self) -> str:
        """`queued` (nothing started), `running`, `paused` (OpenRAG refused the token), then
        `done`, `failed` or `cancelled`."""
        if not self.finished:
            if self.paused:
                return "paused"
            return "running" if self.first_start is not None else "queued"
        if self.counts.get(FileState.CANCELLED.value):
            return "cancelled"
        return "done" if self.succeeded else "failed"

    def _elapsed(self, now: float) -> float | None:
        if self.first_start is None:
            return None
        end = self.last_finish if self.finished and self.last_finish else now
        return max(end - self.first_start, 1e-9)

    def _rate(self, now: float, overall: int, since_retry: int) -> float | None:
        """Per second over the run, or, after a retry, over what ran since it (None until a
        file of the retry finished: a rate of 0 would only say the retry just began)."""
        if self.retried_at is None or self.first_start is None:
            elapsed = self._elapsed(now)
            return None if elapsed is None else overall / elapsed
        if not since_retry:
            return None
        end = self.last_finish if self.finished and self.last_finish else now
        return since_retry / max(end - self.retried_at, 1e-9)

    def files_per_second(self, now: float) -> float | None:
        return self._rate(now, self.done, self.done_since_retry)

    def pages_per_second(self, now: float) -> float | None:
        """None for a batch into OpenRAG: its API does not say how many pages a file had."""
        if self.target == "openrag":
            return None
        return self._rate(now, self.pages_done, self.pages_since_retry)

    def duration_seconds(self, now: float) -> float | None:
        """How long the batch has run so far (or ran, once finished); None before it started."""
        return None if self.first_start is None else self._elapsed(now)

    def eta_seconds(self, now: float) -> float | None:
        """Seconds left at the rate so far; 0 once finished, None before a rate is known."""
        if self.finished:
            return 0.0
        rate = self.files_per_second(now)
        if not rate:
            return None
        return (self.total - self.done) / rate

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "partition": self.partition,
            "target": self.target,
            "state": self.state,
            "paused": self.paused,
            "in_flight": self.in_flight,
            "created_at": self.created_at,
            "metadata": self.metadata,
            "force": self.force,
            "config": self.config.to_dict(),
            "total": self.total,
            "done": self.done,
            "counts": {state.value: self.counts.get(state.value, 0) for state in FileState},
            "pages_done": self.pages_done,
            "files_per_second": self.files_per_second(now),
            "pages_per_second": self.pages_per_second(now),
            "eta_seconds": self.eta_seconds(now),
        }
