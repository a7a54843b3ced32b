"""`openrag-tui index PATH... --partition P` and `openrag-tui batches [show|cancel|retry]`.

Reads come from the ledger on disk (no cluster needed); `index`, `cancel` and `retry` go through
the coordinator. Exit codes: 0 done (with --wait: every file completed or skipped), 1 the batch
or the cluster failed, 2 bad input (one line, nothing submitted), 3 the cluster is unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from openrag_tui.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    UsageError,
    common_options,
    problem_text,
)
from openrag_tui.workspace import Workspace, open_workspace

if TYPE_CHECKING:  # loaded by the commands that need them: they import Ray
    from openrag_tui.indexing.batch import BatchProgress, FileTask
    from openrag_tui.indexing.paths import Where

WAIT_POLL_SECONDS = 0.5
_SETTINGS = {
    "DATA_VOLUME", "PDF_LOADER", "OPENRAG_TUI_CHUNK_SIZE", "OPENRAG_TUI_CHUNK_OVERLAP",
    "OPENRAG_TUI_LEDGER", "OPENRAG_TUI_NAMESPACE",
}  # fmt: skip


class _Failed(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def register(commands: argparse._SubParsersAction) -> None:
    index = commands.add_parser("index", help="index files, folders or globs as one batch")
    index.add_argument("paths", nargs="+", metavar="PATH", help="files, folders, globs")
    index.add_argument("--partition", required=True, help="the partition the files go to")
    index.add_argument("--metadata", metavar="JSON", help="a JSON object stored with each chunk")
    index.add_argument("--force", action="store_true", help="index content already indexed")
    index.add_argument("--wait", action="store_true", help="show progress until the batch ends")
    index.set_defaults(handler=_handle)

    batches = commands.add_parser("batches", help="list batches, show, cancel or retry one")
    actions = batches.add_subparsers(dest="batches_command", metavar="ACTION")
    show = actions.add_parser("show", help="a batch's files: state, attempts, error")
    cancel = actions.add_parser("cancel", help="cancel a batch's queued files")
    retry = actions.add_parser("retry", help="run a batch's failed files again")
    for parser in (show, cancel, retry):
        parser.add_argument("batch_id", metavar="ID")
    resume = actions.add_parser(
        "resume", help="start the coordinator (after a cluster restart): unfinished batches go on"
    )
    batches.set_defaults(handler=_handle)

    for parser in (index, batches, show, cancel, retry, resume):
        common_options(parser)
        parser.add_argument(
            "--address",
            metavar="ADDR",
            default=argparse.SUPPRESS,
            help="Ray address (default: RAY_HEAD_ADDRESS, RAY_ADDRESS, auto)",
        )
    for parser in (index, batches, show):
        parser.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object"
        )


def _handle(args: argparse.Namespace, console: Console, errors: Console) -> int:
    from openrag_tui.indexing.api import BadInput
    from openrag_tui.indexing.batch import BadPartition
    from openrag_tui.indexing.ledger import LedgerError, UnknownBatch
    from openrag_tui.indexing.paths import BadPath

    workspace = open_workspace(args.env, args.dashboard)
    problems = [p for p in workspace.settings.errors if p.variable in _SETTINGS]
    if problems:
        raise UsageError(problem_text(problems[0]))
    command = _COMMANDS[args.command if args.command == "index" else args.batches_command]
    try:
        return command(args, console, workspace)
    except (BadPath, BadPartition, BadInput, UnknownBatch) as error:
        raise UsageError(str(error)) from None
    except (_Failed, LedgerError) as error:
        errors.print(f"openrag-tui: {error}", markup=False)
        return getattr(error, "code", EXIT_FAILED)


def _where(workspace: Workspace) -> Where:
    from openrag_tui.indexing.paths import Where

    return Where.of(workspace.settings, workspace.location.path.parent)


@contextmanager
def _connected(workspace: Workspace, args: argparse.Namespace) -> Iterator[None]:
    from ray.exceptions import RayError

    from openrag_tui.indexing.api import CoordinatorMismatch
    from openrag_tui.logfile import send_logs_to_file
    from openrag_tui.pools import control

    send_logs_to_file()
    try:
        control.connect(workspace.settings, getattr(args, "address", None), silence_fds=True)
        yield
    except control.ClusterUnreachable as error:
        raise _Failed(str(error), EXIT_UNREACHABLE) from None
    except (control.PoolsNotDeployed, CoordinatorMismatch) as error:
        raise _Failed(str(error), EXIT_FAILED) from None
    except RayError as error:  # e.g. the coordinator could not start on its node
        lines = str(error).strip().splitlines()
        reason = lines[0] if lines else type(error).__name__
        raise _Failed(f"the cluster refused: {reason}", EXIT_FAILED) from None


# The commands


def _index(args: argparse.Namespace, console: Console, workspace: Workspace) -> int:
    from openrag_tui.indexing import api

    metadata = _metadata(args.metadata)
    where = _where(workspace)
    request = api.plan_batch(
        workspace.settings, where, args.paths, args.partition, metadata, args.force
    )
    with _connected(workspace, args):
        batch_id = api.submit(workspace.settings, where, request)
    as_json = getattr(args, "json", False)
    if not args.wait:
        if as_json:
            _print_json({"batch_id": batch_id})
        else:
            console.print(batch_id, markup=False)
        return EXIT_OK
    if as_json:  # one JSON object once the batch is over, nothing before it
        progress = _follow(None, where, batch_id)
        _print_json(progress.to_dict(time.time()))
    else:
        console.print(batch_id, markup=False)
        progress = _follow(console, where, batch_id)
        _print_summary(console, progress, api.batch_files(where, batch_id))
    return EXIT_OK if progress.succeeded else EXIT_FAILED


def _list(args: argparse.Namespace, console: Console, workspace: Workspace) -> int:
    from openrag_tui.indexing import api

    batches = api.list_batches(_where(workspace))
    now = time.time()
    if getattr(args, "json", False):
        _print_json({"batches": [batch.to_dict(now) for batch in batches]})
    elif not batches:
        console.print("no batches yet", markup=False)
    else:
        console.print(_batches_table(batches, now))
    return EXIT_OK


def _show(args: argparse.Namespace, console: Console, workspace: Workspace) -> int:
    from openrag_tui.indexing import api

    where = _where(workspace)
    batch = api.get_batch(where, args.batch_id)
    files = api.batch_files(where, args.batch_id)
    if getattr(args, "json", False):
        _print_json({"batch": batch.to_dict(time.time()), "files": [f.to_dict() for f in files]})
    else:
        console.print(_batches_table([batch], time.time()))
        console.print(_files_table(files, where))
    return EXIT_OK


def _cancel(args: argparse.Namespace, console: Console, workspace: Workspace) -> int:
    from openrag_tui.indexing import api

    with _connected(workspace, args):
        count = api.cancel(workspace.settings, _where(workspace), args.batch_id)
    console.print(f"{args.batch_id}: {count} queued file(s) cancelled", markup=False)
    return EXIT_OK


def _retry(args: argparse.Namespace, console: Console, workspace: Workspace) -> int:
    from openrag_tui.indexing import api

    with _connected(workspace, args):
        count = api.retry(workspace.settings, _where(workspace), args.batch_id)
    console.print(f"{args.batch_id}: {count} failed file(s) queued again", markup=False)
    return EXIT_OK


def _resume(args: argparse.Namespace, console: Console, workspace: Workspace) -> int:
    from openrag_tui.indexing import api

    where = _where(workspace)
    with _connected(workspace, args):
        api.start_coordinator(workspace.settings, where)
    unfinished = [b for b in api.list_batches(where) if not b.finished]
    files = sum(b.total - b.done for b in unfinished)
    console.print(
        f"coordinator running: {files} unfinished file(s) in {len(unfinished)} batch(es)",
        markup=False,
    )
    return EXIT_OK


_COMMANDS = {
    "index": _index,
    None: _list,
    "show": _show,
    "cancel": _cancel,
    "retry": _retry,
    "resume": _resume,
}


# Pieces


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise UsageError(f"--metadata is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise UsageError('--metadata must be a JSON object, like \'{"source": "wiki"}\'')
    return value


def _follow(console: Console | None, where: Where, batch_id: str) -> BatchProgress:
    """Wait until every file is final, printing a line each time the counts change."""
    from openrag_tui.indexing import api

    last = None
    while True:
        progress = api.get_batch(where, batch_id)
        if console is not None and progress.counts != last:
            last = progress.counts
            console.print(f"  {_progress_line(progress, time.time())}", markup=False)
        if progress.finished:
            return progress
        time.sleep(WAIT_POLL_SECONDS)


def _progress_line(progress: BatchProgress, now: float) -> str:
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(progress.counts.items()))
    rates = [
        f"{_rate(progress.files_per_second(now))} files/s",
        f"{_rate(progress.pages_per_second(now))} pages/s",
        f"ETA {_eta(progress.eta_seconds(now))}",
    ]
    return f"{progress.done}/{progress.total} done ({counts}) · " + " · ".join(rates)


def _print_summary(console: Console, progress: BatchProgress, files: list[FileTask]) -> None:
    console.print(f"batch {progress.batch_id}: {progress.state}", markup=False)
    for task in files:
        if task.state.value in ("FAILED", "CANCELLED"):
            reason = f": {task.error}" if task.error else ""
            console.print(f"  {task.state.value} {task.path}{reason}", markup=False)


def _batches_table(batches: list[BatchProgress], now: float) -> Table:
    table = Table(title_justify="left")
    for column in ("batch", "partition", "state", "done", "completed", "failed", "skipped"):
        table.add_column(column, justify="left" if column in ("batch", "partition") else "right")
    for column in ("files/s", "pages/s", "ETA"):
        table.add_column(column, justify="right")
    for batch in batches:
        table.add_row(
            batch.batch_id,
            batch.partition,
            batch.state,
            f"{batch.done}/{batch.total}",
            *(str(batch.counts.get(state, 0)) for state in ("COMPLETED", "FAILED", "SKIPPED")),
            _rate(batch.files_per_second(now)),
            _rate(batch.pages_per_second(now)),
            _eta(batch.eta_seconds(now)),
        )
    return table


def _files_table(files: list[FileTask], where: Where) -> Table:
    table = Table()
    for column in ("#", "state", "attempts", "seconds", "pages", "chunks", "path", "error"):
        table.add_column(column, justify="right" if column in ("#", "attempts") else "left")
    for task in files:
        path = Path(task.path)
        shown = path.relative_to(where.volume) if path.is_relative_to(where.volume) else path
        seconds = task.seconds
        table.add_row(
            str(task.index),
            task.state.value,
            str(task.attempts),
            "" if seconds is None else f"{seconds:.2f}",
            "" if task.pages is None else str(task.pages),
            "" if task.chunks is None else str(task.chunks),
            str(shown),
            task.error or "",
        )
    return table


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()
