"""The two pools' facts, in one place: their names, the .env keys that size them, the actor
classes that belong to each (ours and OpenRAG's), and a pool's spec as the .env sets it.

The cluster view (which actors are which pool's), the supervisors (what to start) and the CLI
(which key a resize writes) all read these; nothing else spells them.
"""

from __future__ import annotations

from dataclasses import dataclass

from openrag_tui.config.settings import Settings

POOLS = ("indexer", "marker")
OURS, OPENRAG = "openrag-tui", "openrag"
OWNERS = (OURS, OPENRAG)


@dataclass(frozen=True)
class PoolFacts:
    """What never changes about a pool."""

    name: str
    size_key: str
    gpus_key: str
    concurrency_keys: tuple[str, ...]
    worker_class: str  # our actor class for this pool
    openrag_classes: tuple[str, ...]  # OpenRAG's (generations A and B)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every .env variable that shapes the pool."""
        return (self.size_key, self.gpus_key, *self.concurrency_keys)


FACTS: dict[str, PoolFacts] = {
    "indexer": PoolFacts(
        "indexer", "RAY_POOL_SIZE", "RAY_NUM_GPUS", ("RAY_MAX_TASKS_PER_WORKER",),
        "TuiIndexerWorker", ("DocSerializer", "IndexerWorkerActor"),
    ),
    "marker": PoolFacts(
        "marker", "MARKER_POOL_SIZE", "MARKER_NUM_GPUS",
        ("MARKER_MAX_PROCESSES", "MARKER_MIN_PROCESSES", "MARKER_MAX_TASKS_PER_CHILD"),
        "TuiMarkerWorker", ("MarkerWorker",),
    ),
}  # fmt: skip

_BY_CLASS: dict[str, tuple[str, str]] = {
    **{facts.worker_class: (facts.name, OURS) for facts in FACTS.values()},
    **{cls: (facts.name, OPENRAG) for facts in FACTS.values() for cls in facts.openrag_classes},
}


class UnknownPool(ValueError):
    """A pool name that is neither `indexer` nor `marker`."""


def check_pool(name: str) -> str:
    """The name itself, or UnknownPool with a sentence for the operator."""
    if name not in FACTS:
        raise UnknownPool(f"unknown pool {name!r}: choose indexer or marker")
    return name


def size_key(pool: str) -> str:
    """The .env variable holding the pool's size."""
    return FACTS[check_pool(pool)].size_key


def pool_of_class(class_name: str) -> tuple[str, str] | None:
    """(pool, owner) of an actor class: ours (`openrag-tui`) or OpenRAG's; None for others."""
    return _BY_CLASS.get(class_name)


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
    def size_key(self) -> str:
        return size_key(self.name)

    @property
    def request(self) -> dict[str, float]:
        """The resources one actor of the pool asks Ray for (zero amounts left out)."""
        pairs = (("GPU", self.num_gpus), ("CPU", self.num_cpus))
        return {key: amount for key, amount in pairs if amount}

    @property
    def concurrency(self) -> dict[str, int]:
        """Concurrent work per actor, by the .env's own words."""
        if self.name == "indexer":
            return {"max_tasks_per_worker": self.slots}
        return {
            "max_processes": self.slots,
            "min_processes": self.min_processes,
            "max_tasks_per_child": self.max_tasks_per_child,
        }


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


def pool_specs(settings: Settings) -> tuple[PoolSpec, ...]:
    """Both pools, in POOLS order."""
    return tuple(pool_spec(settings, pool) for pool in POOLS)
