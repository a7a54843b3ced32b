"""What the cluster did over the last minutes: per node GPU utilisation, GPU memory and GPUs
reserved, per actor the GPU memory it held, and indexing's files/s and pages/s.

Pure and bounded: each series is a ring buffer of at most one sample per refresh over the
window (`OPENRAG_TUI_HISTORY_MINUTES`), older samples fall off, and a node or actor not seen for
a whole window is forgotten, so memory stays flat however long the panel runs. The poll's
thread records while the screens read: one lock, and readers get copies.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice

from openrag_tui.cluster.allocation import ClusterView
from openrag_tui.cluster.gpumemory import ActorGpuMemory

#: the shortest refresh a window is sized for (the panel refreshes every 2 s by default)
MIN_INTERVAL_SECONDS = 1.0
NODE_METRICS = ("gpu_utilization", "gpu_memory_mib", "gpus_reserved")
#: the most samples a pool's memory figure is made from (`History.pool_memory`)
POOL_SAMPLES = 20_000


@dataclass
class Series:
    """Timed samples, oldest first, within a window."""

    window: float
    samples: deque[tuple[float, float]]

    @classmethod
    def sized(cls, window: float) -> Series:
        return cls(window, deque(maxlen=math.ceil(window / MIN_INTERVAL_SECONDS) + 1))

    def add(self, when: float, value: float) -> None:
        if self.samples and when <= self.samples[-1][0]:
            return  # the same refresh twice, or a clock step back
        self.samples.append((when, value))
        self.trim(when)

    def trim(self, now: float) -> None:
        while self.samples and self.samples[0][0] < now - self.window:
            self.samples.popleft()

    @property
    def values(self) -> list[float]:
        return [value for _, value in self.samples]

    @property
    def last_seen(self) -> float:
        return self.samples[-1][0] if self.samples else -math.inf


@dataclass
class History:
    """The panel's memory of the last `minutes`."""

    minutes: float
    nodes: dict[str, dict[str, Series]] = field(default_factory=dict)
    actors: dict[str, Series] = field(default_factory=dict)
    files_per_second: Series = field(init=False)
    pages_per_second: Series = field(init=False)
    _done: tuple[float, int, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.files_per_second = Series.sized(self.window)
        self.pages_per_second = Series.sized(self.window)

    @property
    def window(self) -> float:
        return self.minutes * 60.0

    def record_cluster(
        self, view: ClusterView, memory: Mapping[str, ActorGpuMemory], now: float
    ) -> None:
        """One refresh: each alive node's figures, each measured actor's GPU memory."""
        with self._lock:
            self._record_cluster(view, memory, now)

    def _record_cluster(
        self, view: ClusterView, memory: Mapping[str, ActorGpuMemory], now: float
    ) -> None:
        for allocation in view.nodes:
            node = allocation.node
            if not node.is_alive:
                continue
            series = self.nodes.setdefault(
                node.node_id, {name: Series.sized(self.window) for name in NODE_METRICS}
            )
            series["gpus_reserved"].add(now, allocation.gpus_reserved)
            devices = node.gpu_devices
            if devices:
                known = [d.utilization for d in devices if d.utilization is not None]
                if known:
                    series["gpu_utilization"].add(now, sum(known) / len(known))
                series["gpu_memory_mib"].add(now, sum(d.memory_used_mib for d in devices))
        for entry in memory.values():
            if entry.memory_mib is not None and entry.status != "not-gpu":
                self.actors.setdefault(entry.actor_id, Series.sized(self.window)).add(
                    now, entry.memory_mib
                )
        self._forget(now)

    def record_indexing(self, files_done: int, pages_done: int, now: float) -> None:
        """The ledger's running totals: rates are the change since the last sample (a total
        that went down, a batch removed, restarts the count)."""
        with self._lock:
            self._record_indexing(files_done, pages_done, now)

    def _record_indexing(self, files_done: int, pages_done: int, now: float) -> None:
        if self._done is not None:
            when, files, pages = self._done
            elapsed = now - when
            if elapsed > 0 and files_done >= files and pages_done >= pages:
                self.files_per_second.add(now, (files_done - files) / elapsed)
                self.pages_per_second.add(now, (pages_done - pages) / elapsed)
        self._done = (now, files_done, pages_done)

    def node(self, node_id: str, metric: str) -> list[float]:
        with self._lock:
            found = self.nodes.get(node_id)
            return found[metric].values if found else []

    def rates(self) -> tuple[list[float], list[float]]:
        """files/s and pages/s over the window, oldest first."""
        with self._lock:
            return self.files_per_second.values, self.pages_per_second.values

    def actor_memory(self, actor_id: str) -> tuple[float, float] | None:
        """(median, max) of the GPU memory the actor held over the window, in MiB."""
        return self.pool_memory((actor_id,))

    def actor_samples(self, actor_ids: Iterable[str]) -> dict[str, list[float]]:
        """Each actor's GPU memory samples over the window (the planner's median)."""
        with self._lock:
            return {a: self.actors[a].values for a in actor_ids if a in self.actors}

    def pool_memory(self, actor_ids: Iterable[str]) -> tuple[float, float] | None:
        """(median, max) over the samples of these actors: what one actor of the pool holds.
        Every sample while the actors have at most POOL_SAMPLES together, else each actor's
        latest ones: a pool of 14,000 actors over 15 minutes has 6 million samples, a second
        of CPU every refresh."""
        with self._lock:
            found = [series for actor in actor_ids if (series := self.actors.get(actor))]
            latest = max(1, POOL_SAMPLES // len(found)) if found else 0
            values = [
                value for series in found for _, value in islice(reversed(series.samples), latest)
            ]
        return summary(values)

    def _forget(self, now: float) -> None:
        for table in (self.actors,):
            for key in [k for k, s in table.items() if s.last_seen < now - self.window]:
                del table[key]
        for node_id in [
            k for k, s in self.nodes.items() if s["gpus_reserved"].last_seen < now - self.window
        ]:
            del self.nodes[node_id]


def summary(values: list[float]) -> tuple[float, float] | None:
    return (statistics.median(values), max(values)) if values else None
