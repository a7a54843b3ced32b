"""The marker actor's subprocesses: a spawn process pool that recycles and heals itself.

PDF conversion leaks memory and occasionally crashes, so (as in OpenRAG) each subprocess is
replaced after `max_tasks_per_child` tasks, and the pool is reset when a subprocess died and
fewer than `min_processes` remain, or when the executor reports itself broken. The tasks a
broken pool dropped are run again (a crash fails every task in flight, not just the culprit's).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

ATTEMPTS = 3
_PARENT_CHECK_SECONDS = 1.0


def _exit_with_parent(parent: int) -> None:
    """In each subprocess: exit when the actor is gone (a killed actor cannot clean up)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class ChildPool:
    """`max_processes` subprocesses (started on demand) running submitted functions."""

    def __init__(self, max_processes: int, min_processes: int, max_tasks_per_child: int) -> None:
        self._max = max_processes
        self._min = min_processes
        self._max_tasks = max_tasks_per_child
        self._context = multiprocessing.get_context("spawn")
        self.resets = 0
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._max,
            mp_context=self._context,
            max_tasks_per_child=self._max_tasks,
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )

    def children(self) -> list[int]:
        """Pids of the live subprocesses."""
        return sorted(pid for pid, process in self._table().items() if process.is_alive())

    def _table(self) -> dict[int, multiprocessing.process.BaseProcess]:
        # The executor's own table of current subprocesses: recycled ones leave it, so one that
        # is listed but not alive died unexpectedly. There is no public way to read it.
        return dict(self._executor._processes)  # type: ignore[attr-defined]

    def below_minimum(self) -> bool:
        """A subprocess died and fewer than `min_processes` are alive."""
        table = self._table()
        alive = sum(process.is_alive() for process in table.values())
        return alive < len(table) and alive < self._min

    def reset(self) -> None:
        """Start a fresh executor; the old one finishes what it still can, then exits."""
        old, self._executor = self._executor, self._new_executor()
        self.resets += 1
        old.shutdown(wait=False)

    async def run(self, function: Callable[..., Any], args: Sequence[Any]) -> Any:
        """Run `function(*args)` in a subprocess; run it again when the pool broke under it."""
        for _ in range(ATTEMPTS - 1):
            with contextlib.suppress(BrokenProcessPool):
                return await self._submit(function, args)
        return await self._submit(function, args)

    async def _submit(self, function: Callable[..., Any], args: Sequence[Any]) -> Any:
        if self.below_minimum():
            self.reset()
        executor = self._executor
        try:
            return await asyncio.wrap_future(executor.submit(function, *args))
        except BrokenProcessPool:
            if executor is self._executor:  # the first task to notice resets it
                self.reset()
            raise
