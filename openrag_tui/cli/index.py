"""`openrag-tui index PATH... --partition P` and `openrag-tui batches [show|cancel|retry|resume]`.

Reads come from the ledger on disk (no cluster needed); `index`, `cancel`, `retry` and `resume`
go through the coordinator. With `--jsonl`, `index` reports `submitted` (the batch id), then
`progress` and `result` events with `--wait`; `cancel` and `retry` end with a `result` event.
Exit codes: 0 done (with --wait: every file completed or skipped), 1 the batch or the cluster
failed (or no such batch), 2 bad input (one line, nothing submitted), 3 the cluster is
unreachable.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import TYPE_CHECKING, Any

from openrag_tui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Output,
    UsageError,
    address_option,
    changes,
    common_options,
    connected,
    json_option,
    jsonl_option,
    open_workspace_of,
)

if TYPE_CHECKING:  # loaded by the commands that need them: they import Ray
    from rich.table import Table

    from openrag_tui.indexing.batch import BatchProgress, FileTask
    from openrag_tui.indexing.ledger import LedgerReader
    from openrag_tui.indexing.paths import Where
    from openrag_tui.workspace import Workspace

WAIT_POLL_SECONDS = 0.5
#: metadata travels with every chunk: a bound keeps a typo from multiplying megabytes
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32
_SETTINGS = {
    "DATA_VOLUME", "PDF_LOADER", "OPENRAG_TUI_CHUNK_SIZE", "OPENRAG_TUI_CHUNK_OVERLAP",
    "OPENRAG_TUI_LEDGER", "OPENRAG_TUI_NAMESPACE", "OPENRAG_TUI_MAX_FILE_MB", "OPENRAG_TUI_SINK",
    "OPENRAG_TUI_COLLECTION", "OPENRAG_TUI_EMBEDDER", "EMBEDDER_BASE_URL", "VDB_HOST",
    "VDB_PORT", "OPENRAG_TUI_TARGET", "OPENRAG_TUI_OPENRAG_URL", "APP_URL", "APP_PORT",
}  # fmt: skip


def register(commands: argparse._SubParsersAction) -> None:
    index = commands.add_parser("index", help="index files, folders or globs as one batch")
    index.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files, folders, globs; a relative one is looked for in the working folder, then "
        "in DATA_VOLUME",
    )
    index.add_argument("--partition", required=True, help="the partition the files go to")
    index.add_argument("--metadata", metavar="JSON", help="a JSON object stored with each chunk")
    index.add_argument(
        "--force", action="store_true",
        help="index content already indexed (into OpenRAG: replace the file it has)",
    )  # fmt: skip
    index.add_argument(
        "--target", choices=("pools", "openrag"),
        help="our pools, or a running OpenRAG through its API (default: OPENRAG_TUI_TARGET, "
        "else pools)",
    )  # fmt: skip
    index.add_argument("--wait", action="store_true", help="show progress until the batch ends")
    index.set_defaults(handler=_index)

    batches = commands.add_parser("batches", help="list batches, show, cancel or retry one")
    batches.set_defaults(handler=_list)
    actions = batches.add_subparsers(dest="batches_command", metavar="ACTION")
    show = actions.add_parser("show", help="a batch's files: state, attempts, error")
    show.set_defaults(handler=_show)
    cancel = actions.add_parser("cancel", help="cancel a batch's queued files")
    cancel.set_defaults(handler=_cancel)
    retry = actions.add_parser("retry", help="run a batch's failed files again")
    retry.set_defaults(handler=_retry)
    for parser in (show, cancel, retry):
        parser.add_argument("batch_id", metavar="ID", help="a batch id, or a unique part of one")
    resume = actions.add_parser(
        "resume", help="start the coordinator (after a cluster restart): unfinished batches go on"
    )
    resume.set_defaults(handler=_resume)

    for parser in (index, batches, show, cancel, retry, resume):
        common_options(parser)
        address_option(parser)
    for parser in (index, batches, show):
        json_option(parser)
    for parser in (index, cancel, retry):
        jsonl_option(parser)


def _workspace(args: argparse.Namespace) -> Workspace:
    """The .env, refused when a setting indexing depends on is invalid."""
    workspace = open_workspace_of(args)
    problems = [p for p in workspace.settings.errors if p.variable in _SETTINGS]
    if problems:
        raise UsageError(problems[0].text)
    return workspace


def _where(workspace: Workspace) -> Where:
    from openrag_tui.indexing.paths import Where

    return Where.of(workspace.settings, workspace.location.path.parent)


# The commands


@changes
def _index(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.indexing import api

    workspace = _workspace(args)
    metadata = parse_metadata(args.metadata)
    where = _where(workspace)
    request = api.plan_batch(
        workspace.settings, where, args.paths, args.partition, metadata, args.force,
        env_file=str(workspace.location.path), target=args.target,
    )  # fmt: skip
    for note in request.notes:
        out.warn(note)
    from openrag_tui.indexing.preflight import check_services

    check_services(request.config)  # the store and embedder, or OpenRAG, answer and agree
    with connected(workspace, args.address):
        batch_id = api.submit(workspace.settings, where, request)
        if workspace.settings.autopilot == "on":
            from openrag_tui.indexing import autopilot

            autopilot.start(workspace.settings, workspace.location.path)
    out.event(
        "submitted", batch_id=batch_id, files=len(request.files), target=request.config.target
    )
    if not args.wait:
        if out.json_mode:
            out.json({"batch_id": batch_id})
        out.say(batch_id)
        return EXIT_OK
    out.say(batch_id)
    progress = _follow(out, where, batch_id)
    summary = progress.to_dict(time.time())
    if out.json_mode:  # one JSON object once the batch is over, nothing before it
        out.json(summary)
    out.event("result", **summary)
    _print_summary(out, progress, _reader(where).files(batch_id))
    return EXIT_OK if progress.succeeded else EXIT_FAILED


def _reader(where: Where) -> LedgerReader:
    from openrag_tui.indexing.ledger import LedgerReader

    return LedgerReader(where.ledger)


def _list(args: argparse.Namespace, out: Output) -> int:
    reader = _reader(_where(_workspace(args)))
    batches = reader.batches()
    for problem in reader.problems:
        out.warn(problem)
    now = time.time()
    if out.json_mode:
        out.json({"batches": [batch.to_dict(now) for batch in batches]})
    elif not batches:
        out.say("no batches yet")
    else:
        out.print(batches_table(batches, now))
    return EXIT_OK


def _show(args: argparse.Namespace, out: Output) -> int:
    where = _where(_workspace(args))
    reader = _reader(where)
    batch = reader.batch(args.batch_id)
    files = reader.files(batch.batch_id)
    for problem in reader.problems:
        out.warn(problem)
    queue = _openrag_queue(args, batch, where)
    if out.json_mode:
        shown = {"batch": batch.to_dict(time.time()), "files": [f.to_dict() for f in files]}
        if queue is not None:
            shown["openrag"] = queue.to_dict()
        out.json(shown)
    else:
        out.print(batches_table([batch], time.time()))
        if batch.paused:
            out.say(f"paused: {batch.paused}")
        if queue is not None:
            from openrag_tui.render import openrag_line

            out.print(openrag_line(queue))
        out.print(files_table(files, where))
    return EXIT_OK


def _openrag_queue(args: argparse.Namespace, batch: BatchProgress, where: Where):
    """OpenRAG's queue, for a batch into it that is not over."""
    if batch.target != "openrag" or batch.finished:
        return None
    from openrag_tui.indexing.openrag.queue import openrag_queue

    workspace = _workspace(args)
    return openrag_queue(workspace.settings, where, str(workspace.location.path))


@changes
def _cancel(args: argparse.Namespace, out: Output) -> int:
    workspace = _workspace(args)
    where = _where(workspace)
    batch = _reader(where).batch(args.batch_id)
    if batch.finished:
        out.event("result", batch_id=batch.batch_id, cancelled=0, state=batch.state)
        out.say(f"{batch.batch_id}: already {batch.state}, nothing to cancel")
        return EXIT_OK
    from openrag_tui.indexing import api

    with connected(workspace, args.address):
        count = api.cancel(workspace.settings, where, batch.batch_id)
    out.event("result", batch_id=batch.batch_id, cancelled=count)
    inside = " (and in OpenRAG: their tasks asked to stop)" if batch.target == "openrag" else ""
    out.say(f"{batch.batch_id}: {count} file(s) cancelled{inside}")
    return EXIT_OK


@changes
def _retry(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.indexing import api

    workspace = _workspace(args)
    where = _where(workspace)
    batch = _reader(where).batch(args.batch_id)
    with connected(workspace, args.address):
        count = api.retry(workspace.settings, where, batch.batch_id)
    out.event("result", batch_id=batch.batch_id, retried=count)
    out.say(f"{batch.batch_id}: {count} failed file(s) queued again")
    return EXIT_OK


@changes
def _resume(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.indexing import api

    workspace = _workspace(args)
    where = _where(workspace)
    unfinished = [b for b in _reader(where).batches() if not b.finished]
    with connected(workspace, args.address):
        if any(b.target == "pools" for b in unfinished):  # OpenRAG's batches need no pools
            api.start_coordinator(workspace.settings, where)
        paused = api.resume(workspace.settings, where)
    files = sum(b.total - b.done for b in unfinished)
    out.say(f"coordinator running: {files} unfinished file(s) in {len(unfinished)} batch(es)")
    if paused:
        out.say(f"{paused} paused batch(es) go on (AUTH_TOKEN read again)")
    return EXIT_OK


# Pieces


def parse_metadata(text: str | None) -> dict[str, Any] | None:
    """`--metadata`: a JSON object of standard JSON (no NaN, no infinities), bounded in size
    and depth."""
    if text is None:
        return None
    if len(text.encode("utf-8")) > MAX_METADATA_BYTES:
        raise UsageError(f"--metadata is over {MAX_METADATA_BYTES // 1024} KiB: refused")

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            raise ValueError(f"{number} is not a finite number")
        return value

    def no_constants(name: str) -> float:
        raise ValueError(f"{name} is not a JSON number")

    try:
        value = json.loads(text, parse_float=finite, parse_constant=no_constants)
    except RecursionError:
        raise UsageError(f"--metadata nests deeper than {MAX_METADATA_DEPTH} levels") from None
    except ValueError as error:
        raise UsageError(f"--metadata is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise UsageError('--metadata must be a JSON object, like \'{"source": "wiki"}\'')
    if _depth(value) > MAX_METADATA_DEPTH:
        raise UsageError(f"--metadata nests deeper than {MAX_METADATA_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """How deep objects and lists nest (iteratively: the input may be hostile)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            level += 1
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level) for child in children)
    return deepest


def _follow(out: Output, where: Where, batch_id: str) -> BatchProgress:
    """Wait until every file is final, reporting each change of the counts."""
    last = None
    while True:
        progress = _reader(where).batch(batch_id)
        if progress.counts != last:
            last = progress.counts
            now = time.time()
            out.say(f"  {progress_line(progress, now)}")
            out.event("progress", **progress.to_dict(now))
        if progress.finished:
            return progress
        time.sleep(WAIT_POLL_SECONDS)


def progress_line(progress: BatchProgress, now: float) -> str:
    from openrag_tui.formats import duration, rate

    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(progress.counts.items()))
    timing = (
        f"took {duration(progress.duration_seconds(now))}"
        if progress.finished
        else f"ETA {duration(progress.eta_seconds(now))}"
    )
    rates = [
        f"{rate(progress.files_per_second(now))} files/s",
        f"{rate(progress.pages_per_second(now))} pages/s",
        timing,
    ]
    return f"{progress.done}/{progress.total} done ({counts}) · " + " · ".join(rates)


def _print_summary(out: Output, progress: BatchProgress, files: list[FileTask]) -> None:
    out.say(f"batch {progress.batch_id}: {progress.state}")
    for task in files:
        if task.state.value in ("FAILED", "CANCELLED"):
            reason = f": {task.error}" if task.error else ""
            out.say(f"  {task.state.value} {task.path}{reason}")


def batches_table(batches: list[BatchProgress], now: float) -> Table:
    """Fits 80 columns with nothing cut: ids whole (they are what `batches show` takes), every
    number whole; the partition wraps. The rest is in `--json`."""
    from rich import box
    from rich.table import Table

    from openrag_tui.formats import duration, fraction, plain, rate

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("batch", no_wrap=True, min_width=max(len(b.batch_id) for b in batches))
    table.add_column("partition", overflow="fold")
    table.add_column("target", no_wrap=True)
    for column in ("state", "done", "failed", "files/s", "ETA/took"):
        table.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    for batch in batches:
        timing = batch.duration_seconds(now) if batch.finished else batch.eta_seconds(now)
        table.add_row(
            batch.batch_id,
            plain(batch.partition),
            batch.target,
            batch.state,
            fraction(batch.done, batch.total),
            str(batch.counts.get("FAILED", 0)),
            rate(batch.files_per_second(now)),
            duration(timing),
        )
    return table


def files_table(files: list[FileTask], where: Where) -> Table:
    from pathlib import Path

    from rich import box
    from rich.table import Table

    from openrag_tui.formats import plain

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("#", "state", "tries", "s", "pages", "chunks"):
        table.add_column(
            column, justify="left" if column == "state" else "right", no_wrap=True,
            min_width=len(column),
        )  # fmt: skip
    table.add_column("path", overflow="fold", ratio=1)
    table.add_column("error", overflow="fold", ratio=1)
    for task in files:
        path = Path(task.path)
        shown = path.relative_to(where.volume) if path.is_relative_to(where.volume) else path
        seconds = task.seconds
        table.add_row(
            str(task.index),
            task.state.value,
            str(task.attempts),
            "" if seconds is None else f"{seconds:.1f}",
            "" if task.pages is None else str(task.pages),
            "" if task.chunks is None else str(task.chunks),
            plain(shown),
            plain(task.error or ""),
        )
    return table
