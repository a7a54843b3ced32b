"""What one pool is, read from the shared .env: its size, what each actor reserves, how much
work each actor takes at once, and the Ray names that identify it.

Names start with `ortui-`, so they never clash with OpenRAG's own actors (`SerializerQueue`,
`MarkerPool`, `IndexerPoolDispatcher-v6`, `IndexerWorker-v6-*`, `TaskStateManager`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from openrag_tui.config import Settings

POOLS = ("indexer", "marker")
_SIZE_FIELD = {"indexer": "ray_pool_size", "marker": "marker_pool_size"}


class UnknownPool(ValueError):
    """A pool name that is neither `indexer` nor `marker`."""


@dataclass(frozen=True)
class PoolSpec:
    """One pool as configured. `slots` is the number of tasks one actor runs at once: indexer
    `RAY_MAX_TASKS_PER_WORKER`, marker `MARKER_MAX_PROCESSES` (one subprocess per task)."""

    name: str
    size: int
    num_gpus: float
    num_cpus: float
    slots: int
    namespace: str
    min_processes: int = 0  # marker only: fewer live subprocesses resets the process pool
    max_tasks_per_child: int = 0  # marker only: a subprocess is replaced after this many

    @property
    def supervisor_name(self) -> str:
        return supervisor_name(self.name)

    @property
    def size_key(self) -> str:
        """The .env variable holding this pool's size."""
        return size_key(self.name)

    def actor_name(self, index: int) -> str:
        return f"{actor_prefix(self.name)}{index}"


def check_pool(name: str) -> str:
    """The name itself, or UnknownPool with a sentence for the operator."""
    if name not in POOLS:
        raise UnknownPool(f"unknown pool {name!r}: choose indexer or marker")
    return name


def supervisor_name(pool: str) -> str:
    return f"ortui-supervisor-{check_pool(pool)}"


def actor_prefix(pool: str) -> str:
    return f"ortui-{check_pool(pool)}-"


def actor_index(pool: str, name: str) -> int | None:
    """The counter in a worker's name (`ortui-indexer-7` -> 7); None for any other name."""
    match = re.fullmatch(re.escape(actor_prefix(pool)) + r"(\d+)", name)
    return int(match[1]) if match else None


def size_key(pool: str) -> str:
    return Settings.env_key(_SIZE_FIELD[check_pool(pool)])


def pool_spec(settings: Settings, pool: str) -> PoolSpec:
    """The spec of one pool from Settings (the .env is the one source of truth)."""
    if check_pool(pool) == "indexer":
        return PoolSpec(
            name="indexer",
            size=settings.ray_pool_size,
            num_gpus=settings.ray_num_gpus,
            num_cpus=settings.pool_num_cpus,
            slots=settings.ray_max_tasks_per_worker,
            namespace=settings.namespace,
        )
    return PoolSpec(
        name="marker",
        size=settings.marker_pool_size,
        num_gpus=settings.marker_num_gpus,
        num_cpus=settings.pool_num_cpus,
        slots=settings.marker_max_processes,
        namespace=settings.namespace,
        min_processes=settings.marker_min_processes,
        max_tasks_per_child=settings.marker_max_tasks_per_child,
    )
