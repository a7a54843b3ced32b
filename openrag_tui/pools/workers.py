"""The pool actors. Their class names are how the cluster view recognises the panel's pools, so
they are the `worker_class` of each pool in `config.pools.FACTS` (a test holds them to it). They
are plain classes: the supervisor makes them Ray actors.

Both are async actors. Besides the task slots, each keeps two calls open for its supervisor:
`ready` (answered once constructed) and `lifeline` (answered only when the actor is retired),
whose failure is how the supervisor learns at once that an idle actor died. A retired actor
ends itself (`end`): Ray records an intended exit, not a kill, so no death is reported for it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

from openrag_tui.config.pools import PoolSpec
from openrag_tui.pools.processes import ChildPool

#: calls an actor serves beyond its task slots: `lifeline`, and `ready`, `stats` or `end`
CONTROL_CALLS = 2


def failure_line(function: Callable[..., Any], args: Sequence[Any], error: BaseException) -> str:
    """`openrag-tui: index_document failed for /data/a.pdf: DocumentError: encrypted PDF`: the
    file is named, so the batches screen finds a failed file's line in its pool's log."""
    subject = next(filter(None, map(_file_of, args)), None)
    about = f" for {subject}" if subject else ""
    message = str(error).strip().splitlines()
    reason = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
    return f"openrag-tui: {getattr(function, '__name__', 'task')} failed{about}: {reason}"


def _file_of(arg: Any) -> str | None:
    """The file a task argument names: a path, or a job's `source` (convert takes a path)."""
    if isinstance(arg, str):
        return arg
    source = getattr(arg, "source", None)
    return source if isinstance(source, str) else None


class _Worker:
    """What both pools' actors share: readiness, the lifeline, counting tasks."""

    def __init__(self) -> None:
        self._in_flight = 0
        self._done = 0
        self._retired: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None  # set while no task of ours runs

    async def ready(self) -> int:
        return os.getpid()

    async def lifeline(self) -> None:
        self._retired = self._retired or asyncio.Event()
        await self._retired.wait()

    async def end(self) -> None:
        """Retired with nothing in flight: answer the lifeline, then exit as intended, once
        our own tasks have ended (the supervisor's count may say drained a moment early: an
        exit under a running write left its temporary file behind, seen in CI; the supervisor
        kills an actor that takes longer than its grace)."""
        self._retired = self._retired or asyncio.Event()
        self._retired.set()
        if self._in_flight:
            self._idle = self._idle or asyncio.Event()
            await self._idle.wait()
        await asyncio.sleep(0)  # let the lifeline's answer go out first
        ray.actor.exit_actor()

    async def run(self, function: Callable[..., Any], args: Sequence[Any]) -> Any:
        self._in_flight += 1
        if self._idle is not None:
            self._idle.clear()
        try:
            return await self._execute(function, args)
        except Exception as error:  # said in the worker's log, where `logs` and the panel look
            print(failure_line(function, args, error), file=sys.stderr, flush=True)
            raise
        finally:
            self._in_flight -= 1
            self._done += 1
            if not self._in_flight and self._idle is not None:
                self._idle.set()

    async def _execute(self, function: Callable[..., Any], args: Sequence[Any]) -> Any:
        raise NotImplementedError

    async def stats(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "in_flight": self._in_flight, "done": self._done}


class TuiIndexerWorker(_Worker):
    """Runs up to `RAY_MAX_TASKS_PER_WORKER` tasks at once, each on its own thread."""

    def __init__(self, spec: PoolSpec) -> None:
        super().__init__()
        self._threads = ThreadPoolExecutor(max_workers=spec.slots, thread_name_prefix="task")

    async def _execute(self, function: Callable[..., Any], args: Sequence[Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._threads, function, *args)


class TuiMarkerWorker(_Worker):
    """Runs each task in one of its `MARKER_MAX_PROCESSES` subprocesses (see ChildPool)."""

    def __init__(self, spec: PoolSpec) -> None:
        super().__init__()
        self._children = ChildPool(spec.slots, spec.min_processes, spec.max_tasks_per_child)

    async def _execute(self, function: Callable[..., Any], args: Sequence[Any]) -> Any:
        return await self._children.run(function, args)

    async def stats(self) -> dict[str, Any]:
        found = await super().stats()
        return {**found, "children": self._children.children(), "resets": self._children.resets}


WORKER_CLASSES: dict[str, type[_Worker]] = {
    "indexer": TuiIndexerWorker,
    "marker": TuiMarkerWorker,
}
