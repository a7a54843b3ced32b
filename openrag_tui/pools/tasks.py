"""The kinds of work a pool runs, by name. Registering one is a decorator: `@task("chunk")`.

Pools ship the registered function itself to the worker; Ray and the marker's subprocesses
pickle it by reference, so a task must be a module-level function of an importable module.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

TASKS: dict[str, Callable[..., Any]] = {}


class UnknownTask(ValueError):
    """A task kind nobody registered."""


def task(kind: str) -> Callable[[F], F]:
    """Register a function under `kind`; a second function for the same kind is a bug."""

    def register(function: F) -> F:
        if TASKS.get(kind, function) is not function:
            raise ValueError(f"task kind {kind!r} is already registered")
        TASKS[kind] = function
        return function

    return register


def resolve(kind: str) -> Callable[..., Any]:
    try:
        return TASKS[kind]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise UnknownTask(f"unknown task kind {kind!r} (known: {known})") from None


@task("noop")
def noop() -> None:
    """Nothing: measures dispatch overhead."""


@task("echo")
def echo(value: Any) -> Any:
    return value


@task("sleep")
def sleep(seconds: float, value: Any = None) -> Any:
    """Hold a slot for `seconds`, then return `value` (tests use it as a task id)."""
    time.sleep(seconds)
    return value


@task("pid")
def pid() -> int:
    """The process that ran the task: the marker's subprocess, or the indexer actor."""
    return os.getpid()


@task("fail")
def fail(message: str = "failed on purpose") -> NoReturn:
    raise RuntimeError(message)
