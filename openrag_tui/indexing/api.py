"""The one door to indexing for the CLI and the panel (call it from a worker thread).

Reads (`list_batches`, `get_batch`, `batch_files`) come from the ledger on disk and need no
cluster. Changes (`submit`, `cancel`, `retry`) go through the coordinator, the ledger's only
writer: `control.connect(settings)` first. Bad input raises a ValueError subclass (BadPath,
BadPartition, BadInput) with one sentence for the operator.
"""

from __future__ import annotations

import contextlib

import ray
from ray.actor import ActorHandle

from openrag_tui.config import Settings
from openrag_tui.indexing.batch import BatchProgress, FileTask
from openrag_tui.indexing.coordinator import COORDINATOR_NAME, MIN_IN_FLIGHT, Coordinator
from openrag_tui.indexing.errors import BadInput, CoordinatorMismatch
from openrag_tui.indexing.ledger import LedgerReader
from openrag_tui.indexing.paths import Where
from openrag_tui.indexing.plan import BatchRequest, checked_config, plan_batch
from openrag_tui.pools import control

__all__ = [
    "BadInput",
    "BatchRequest",
    "CoordinatorMismatch",
    "Where",
    "batch_files",
    "cancel",
    "checked_config",
    "forget",
    "get_batch",
    "in_flight",
    "list_batches",
    "openrag_limits",
    "plan_batch",
    "resume",
    "retry",
    "start_coordinator",
    "stop_coordinator",
    "submit",
]

_Coordinator = ray.remote(Coordinator)
COORDINATOR_CONCURRENCY = 1000


# Reads: the ledger, never an actor's memory


def list_batches(where: Where) -> list[BatchProgress]:
    """Every batch, newest first: counts per state; `.files_per_second(now)`,
    `.pages_per_second(now)`, `.eta_seconds(now)` and `.to_dict(now)` for the rest."""
    return LedgerReader(where.ledger).batches()


def get_batch(where: Where, batch_id: str) -> BatchProgress:
    """One batch (UnknownBatch if there is none by that id)."""
    return LedgerReader(where.ledger).batch(batch_id)


def batch_files(where: Where, batch_id: str) -> list[FileTask]:
    """The batch's files in order, with state, attempts, timings and error."""
    return LedgerReader(where.ledger).files(batch_id)


# Changes: through the coordinator


def submit(settings: Settings, where: Where, request: BatchRequest) -> str:
    """Record the batch (every file QUEUED) through the coordinator; returns its id at once.
    A batch into OpenRAG needs none of our pools: they are not deployed for it."""
    coordinator = start_coordinator(settings, where, pools=request.config.target == "pools")
    return ray.get(
        coordinator.submit.remote(
            list(request.files), request.partition, request.metadata, request.force, request.config
        )
    )


def forget(settings: Settings, where: Where, partition: str, relatives: list[str]) -> int:
    """Remove these documents (paths inside the volume) from the .env's sink and from what the
    ledger remembers as indexed; how many rows or files went."""
    coordinator = start_coordinator(settings, where)
    return ray.get(
        coordinator.forget.remote(
            partition, relatives, settings.sink, settings.vdb_uri, settings.collection
        )
    )


def cancel(settings: Settings, where: Where, batch_id: str) -> int:
    """Queued files of the batch become CANCELLED (running ones finish); how many."""
    get_batch(where, batch_id)
    return ray.get(start_coordinator(settings, where).cancel.remote(batch_id))


def retry(settings: Settings, where: Where, batch_id: str) -> int:
    """Failed files of the batch are queued again with fresh attempts; how many."""
    get_batch(where, batch_id)
    return ray.get(start_coordinator(settings, where).retry.remote(batch_id))


def resume(settings: Settings, where: Where) -> int:
    """Start the coordinator (it resumes unfinished batches), and let batches paused because
    OpenRAG refused the token go on now; how many were paused."""
    return ray.get(start_coordinator(settings, where, pools=False).resume.remote())


def openrag_limits(settings: Settings, where: Where) -> dict[str, dict]:
    """Per OpenRAG URL the coordinator sends to: the limit in force, its source, in flight."""
    return ray.get(start_coordinator(settings, where, pools=False).openrag_limits.remote())


def start_coordinator(settings: Settings, where: Where, pools: bool = True) -> ActorHandle:
    """The namespace's coordinator, started if need be (it then resumes unfinished batches);
    with `pools`, deploys the pools first if they are not deployed."""
    if pools and None in control.status().values():
        control.deploy(settings)
    coordinator = _Coordinator.options(
        name=COORDINATOR_NAME,
        namespace=settings.namespace,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        max_restarts=-1,
        max_concurrency=COORDINATOR_CONCURRENCY,
    ).remote(where, in_flight(settings))
    found = ray.get(coordinator.where.remote())
    if found.ledger != where.ledger:
        raise CoordinatorMismatch(
            f"the coordinator in namespace {settings.namespace!r} writes {found.ledger}, "
            f"not {where.ledger}: one ledger per namespace"
        )
    return coordinator


def stop_coordinator() -> bool:
    """End the coordinator (unfinished files wait in the ledger for the next one)."""
    with contextlib.suppress(ValueError):
        ray.kill(ray.get_actor(COORDINATOR_NAME), no_restart=True)
        return True
    return False


def in_flight(settings: Settings) -> int:
    """Enough pool tasks at once to keep every slot of both pools busy (at least a few)."""
    marker = settings.marker_pool_size * settings.marker_max_processes
    indexer = settings.ray_pool_size * settings.ray_max_tasks_per_worker
    return max(MIN_IN_FLIGHT, marker + indexer)
