"""What every CLI subcommand shares: exit codes, the one error → exit code map, the output
(human lines, one JSON object, or JSON lines for programs), options, and joining the cluster.

Core modules raise their own exceptions with a sentence for the operator; `failure_of` is the
one place that decides each one's exit code, so every command answers bad input the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from openrag_tui.formats import safe_lines

if TYPE_CHECKING:
    from openrag_tui.workspace import Workspace

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Failed(Exception):
    """The command ran and must exit with `code` after this one line."""

    code = EXIT_FAILED

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(Failed):
    """Bad input: one clear line, exit 2, nothing changed."""

    code = EXIT_USAGE


class ReadOnly(UsageError):
    """`--read-only` was given to a command that changes something."""


def failure_of(error: BaseException) -> tuple[int, str] | None:
    """The exit code and the line for an error of the core; None for a bug (a traceback)."""
    from openrag_tui.cluster.dashboard import DashboardError
    from openrag_tui.cluster.planner import PlanRefused
    from openrag_tui.cluster.targets import LifecycleError
    from openrag_tui.config import EnvFileError
    from openrag_tui.config.pools import UnknownPool
    from openrag_tui.indexing.batch import BadPartition
    from openrag_tui.indexing.errors import (
        AuthRefused,
        BadInput,
        CoordinatorMismatch,
        DocumentError,
        Unavailable,
    )
    from openrag_tui.indexing.ledger import LedgerError
    from openrag_tui.indexing.paths import BadPath
    from openrag_tui.pools.errors import ClusterUnreachable, PoolsNotDeployed

    codes: tuple[tuple[tuple[type[BaseException], ...], int], ...] = (
        (
            (
                EnvFileError,
                LifecycleError,
                UnknownPool,
                BadPath,
                BadPartition,
                BadInput,
                PlanRefused,
            ),
            EXIT_USAGE,
        ),
        ((DashboardError, ClusterUnreachable, Unavailable), EXIT_UNREACHABLE),
        ((DocumentError, AuthRefused), EXIT_USAGE),  # e.g. another embedder; AUTH_TOKEN
        ((PoolsNotDeployed, CoordinatorMismatch, LedgerError), EXIT_FAILED),
    )
    if isinstance(error, Failed):
        return error.code, str(error)
    for kinds, code in codes:
        if isinstance(error, kinds):
            return code, str(error)
    if type(error).__module__.startswith("ray."):  # e.g. the coordinator could not start
        return EXIT_FAILED, f"the cluster refused: {ray_reason(error)}"
    return None


_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(?P<kind>\w*(?:Error|Exception)): (?P<text>.+)$")


def ray_reason(error: BaseException) -> str:
    """Why a Ray call failed: the original exception's own sentence, not Ray's wrapping of it
    (a task's error carries it as `cause`; an actor that died in its constructor only in the
    text of its traceback, whose last exception line says why)."""
    from openrag_tui.cluster.raylog import clean_line

    cause: BaseException = error
    for _ in range(10):  # Ray wraps causes in causes; follow them to the one that says why
        inner = getattr(cause, "cause", None) or cause.__cause__
        if not isinstance(inner, BaseException) or inner is cause:
            break
        cause = inner
    if cause is not error and not type(cause).__module__.startswith("ray."):
        return _sentence(type(cause), str(cause))
    lines = [clean_line(line).strip() for line in str(error).splitlines()]
    for line in reversed(lines):
        found = _EXCEPTION_LINE.match(line)
        if found and not found["kind"].startswith(("Ray", "Actor", "Task")):
            return found["text"] if "openrag_tui" in line else f"{found['kind']}: {found['text']}"
    said = next((line for line in lines if line), "")
    return f"{type(error).__name__}: {said}" if said else type(error).__name__


def _sentence(kind: type[BaseException], text: str) -> str:
    """Our own errors are sentences already; anything else keeps its type for context."""
    first = text.strip().splitlines()[0] if text.strip() else kind.__name__
    return first if kind.__module__.startswith("openrag_tui") else f"{kind.__name__}: {first}"


@dataclass
class Output:
    """Where a command's words go. `say` is a human line (left out with --json and --jsonl),
    `event` a JSON line (only with --jsonl: progress for programs such as the panel), `json`
    the one object of --json; `fail` is the one line of an error, on stderr (and, with --jsonl,
    as an `error` event). Text from outside is printed safe (no terminal escapes)."""

    stdout: TextIO
    stderr: TextIO
    json_mode: bool = False
    jsonl: bool = False

    @classmethod
    def for_args(cls, args: argparse.Namespace) -> Output:
        return cls(
            sys.stdout,
            sys.stderr,
            json_mode=bool(getattr(args, "json", False)),
            jsonl=bool(getattr(args, "jsonl", False)),
        )

    @property
    def human(self) -> bool:
        return not (self.json_mode or self.jsonl)

    def say(self, text: str) -> None:
        if self.human:
            self._write(self.stdout, safe_lines(text))

    def print(self, renderable: Any) -> None:
        """A rich table or text (built with safe cells), for the human output only."""
        if self.human:
            from rich.console import Console

            Console(file=self.stdout, highlight=False, soft_wrap=True).print(renderable)

    def event(self, kind: str, **fields: Any) -> None:
        if self.jsonl:
            self._write(self.stdout, json.dumps({"event": kind, **fields}, allow_nan=False))

    def json(self, payload: Any) -> None:
        self._write(self.stdout, json_text(payload))

    def warn(self, text: str) -> None:
        self._write(self.stderr, f"openrag-tui: {safe_lines(text)}")

    def fail(self, error: BaseException) -> int:
        """Report an error as one line and return its exit code; a bug is re-raised."""
        found = failure_of(error)
        if found is None:
            raise error
        code, message = found
        self.event("error", message=message, exit_code=code)
        self.warn(message)
        return code

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        stream.write(text + "\n")
        stream.flush()


def json_text(payload: Any) -> str:
    """One line of compact JSON, pure ASCII as `json.dumps` writes it (text from the cluster
    never reaches the terminal raw). Written by msgspec: `status --json` of a 1,000-node cluster
    is 7 MB, which `json.dumps` takes seven times as long to write, and most of it is rows
    kept as msgspec structs (`cluster.summary`), which msgspec writes as objects. A float
    reads as with `json.dumps`, its text may not (`1e16`, not `1e+16`). What msgspec refuses
    (a lone surrogate, which a dashboard's JSON may hold; a key that is None or a bool) goes
    through `json.dumps`."""
    import msgspec

    try:
        text = msgspec.json.encode(payload).decode()
    except (TypeError, UnicodeEncodeError):
        return json.dumps(
            payload, allow_nan=False, separators=(",", ":"), default=msgspec.to_builtins
        )
    return text if text.isascii() else _NON_ASCII.sub(_escaped, text)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _escaped(found: re.Match[str]) -> str:
    """A character as JSON's `\\uXXXX` (a surrogate pair above U+FFFF), as `json.dumps` does."""
    code = ord(found[0])
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}"


def common_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--env and --dashboard, accepted both before and after the subcommand."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--env",
        metavar="PATH",
        default=default,
        help="the shared .env (default: $SHARED_ENV, ./.env, /ray_mount/.env)",
    )
    parser.add_argument(
        "--dashboard",
        metavar="URL",
        default=default,
        help="Ray dashboard URL (default: from the .env, else http://127.0.0.1:$RAY_DASHBOARD_PORT)",
    )


def address_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        metavar="ADDR",
        default=None,
        help="Ray address (default: RAY_HEAD_ADDRESS, then RAY_ADDRESS, then auto)",
    )


def jsonl_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jsonl",
        action="store_true",
        help="print progress and the result as JSON lines, one event per line (for programs)",
    )


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def changes(handler: Callable[[argparse.Namespace, Output], int]) -> Callable[..., int]:
    """Mark a handler as changing something: with --read-only it refuses, before anything."""

    def run(args: argparse.Namespace, out: Output) -> int:
        if getattr(args, "read_only", False):
            raise ReadOnly(f"--read-only: `{command_line(args)}` would change something: refused")
        return handler(args, out)

    run.__doc__ = handler.__doc__
    run.__name__ = handler.__name__
    return run


def command_line(args: argparse.Namespace) -> str:
    words = [args.command, *(getattr(args, name, None) for name in _SUBCOMMAND_DESTS)]
    return "openrag-tui " + " ".join(w for w in words if isinstance(w, str))


_SUBCOMMAND_DESTS = ("env_command", "pools_command", "batches_command", "autopilot_command")


def positive_float(text: str) -> float:
    """An argparse type: a number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number greater than 0: {text!r}")
    return value


def whole_number(text: str) -> int:
    """An argparse type: a whole number of 0 or more (ASCII digits only)."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, got {text!r}")
    return int(text)


def open_workspace_of(args: argparse.Namespace) -> Workspace:
    from openrag_tui.workspace import open_workspace

    return open_workspace(args.env, args.dashboard)


@contextmanager
def connected(workspace: Workspace, address: str | None) -> Iterator[None]:
    """Join the cluster as a quiet driver (Ray's output to the log file, not the terminal).

    From then on, for the rest of the command, SIGTERM ends it at once with 143: Ray's own
    handler would exit with 15, and its core dump stack traces on the way out."""
    from openrag_tui.logfile import send_logs_to_file
    from openrag_tui.pools.connection import connect

    send_logs_to_file()
    connect(workspace.settings, address, silence_fds=True)
    signal.signal(signal.SIGTERM, _exit_terminated)
    yield


def _exit_terminated(_signum: int, _frame: object) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_TERMINATED)
