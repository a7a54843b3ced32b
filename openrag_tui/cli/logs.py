"""`openrag-tui logs NAME [--follow] [--lines N] [--only out|err]`: an actor's worker stdout
and stderr from the Ray dashboard.

NAME is an actor's name or id (ours, OpenRAG's, any in the cluster) or a pool (`indexer`,
`marker`: its alive actors, each line prefixed `[actor] `). Only the log lines go to stdout
(made safe for the terminal), each actor's stdout lines before its stderr lines; what is
missing is one line each on stderr. Exit codes: 0 shown, 1 a log is missing (or a named actor
is not alive to follow), 2 NAME names nothing or the follow is too wide, 3 the dashboard is
unreachable. With --follow, Ctrl-C ends it (with the same code).
"""

from __future__ import annotations

import argparse
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TextIO

from openrag_tui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    Failed,
    Output,
    UsageError,
    common_options,
    open_workspace_of,
)

if TYPE_CHECKING:
    from openrag_tui.cluster.dashboard import DashboardClient
    from openrag_tui.cluster.logs import LogTail, Selection
    from openrag_tui.cluster.state import Actor

DEFAULT_LINES = 50  # as openrag_tui.cluster.logs.DEFAULT_LINES (imported lazily there)
MAX_LINES = 10_000
TAILS_AT_ONCE = 3  # actors read at once: the client's connection pool holds 7


def register(commands: argparse._SubParsersAction) -> None:
    logs = commands.add_parser(
        "logs", help="an actor's or a pool's last stdout/stderr lines; --follow for new ones"
    )
    logs.add_argument(
        "name",
        metavar="NAME",
        help="an actor's name or id, or a pool (indexer, marker: its alive actors)",
    )
    logs.add_argument(
        "-f", "--follow", action="store_true", help="then print new lines as written, to Ctrl-C"
    )
    logs.add_argument(
        "-n",
        "--lines",
        type=_line_count,
        default=DEFAULT_LINES,
        metavar="N",
        help=f"the last N lines of each log (default {DEFAULT_LINES})",
    )
    logs.add_argument(
        "--only", choices=("out", "err"), help="only the actor's stdout (out) or stderr (err)"
    )
    common_options(logs)
    logs.set_defaults(handler=run_logs)


def _line_count(text: str) -> int:
    """An argparse type: 1 to MAX_LINES (Ray reads 0 lines as 1000; a huge count would make it
    send the whole file)."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LINES:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_LINES}, got {text!r}"
        )
    return int(text)


def run_logs(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.cluster import logs

    workspace = open_workspace_of(args)
    client = workspace.client()
    try:
        state = logs.read_state(client)
        try:
            selection = logs.resolve(state, args.name)
        except logs.UnknownActor as error:
            raise UsageError(str(error)) from None
        except logs.NoAliveActors as error:
            raise Failed(str(error)) from None
        streams = (args.only,) if args.only else logs.STREAMS
        if args.follow:
            return _follow(client, selection, args.lines, streams, out)
        return _tail(client, selection, args.lines, streams, out)
    finally:
        client.close()


def _tail(
    client: DashboardClient,
    selection: Selection,
    lines: int,
    streams: tuple[str, ...],
    out: Output,
) -> int:
    """Each actor's last lines, in the selection's order; exit 1 when a log was missing."""
    from openrag_tui.cluster import logs

    def read(actor: Actor) -> LogTail:
        return logs.tail(client, actor, lines, streams, selection.label(actor))

    with ThreadPoolExecutor(max_workers=TAILS_AT_ONCE) as pool:
        tails = list(pool.map(read, selection.actors))
    code = EXIT_OK
    for found in tails:
        label = found.actor if selection.prefixed else None
        for text in (*found.out, *found.err):
            _line(out.stdout, logs.render(text, label))
        if found.missing:
            out.warn(found.missing)
            code = EXIT_FAILED
    return code


def _follow(
    client: DashboardClient,
    selection: Selection,
    lines: int,
    streams: tuple[str, ...],
    out: Output,
) -> int:
    """The alive actors' logs followed until Ctrl-C (or until none is left); a named actor
    that is not alive is only shown (its log will not grow, and a stream left on it would
    hold a dashboard slot for good)."""
    from openrag_tui.cluster import logs

    if not any(actor.state == "ALIVE" for actor in selection.actors):
        code = _tail(client, selection, lines, streams, out)
        states = ", ".join(sorted({actor.state for actor in selection.actors}))
        out.warn(f"{selection.name} is {states}, not alive: its log will not grow, not followed")
        return max(code, EXIT_FAILED)
    try:
        items = logs.follow(client, selection, lines, threading.Event(), streams)
    except logs.TooManyStreams as error:
        raise UsageError(str(error)) from None
    code = EXIT_OK
    try:
        for item in items:
            if isinstance(item, logs.StreamEnded):
                out.warn(item.reason)
                if item.failed:
                    code = max(code, EXIT_UNREACHABLE if item.unreachable else EXIT_FAILED)
            else:
                label = item.actor if selection.prefixed else None
                _line(out.stdout, logs.render(item.text, label))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a follow ends
    finally:
        items.close()
    return code


def _line(stream: TextIO, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()
