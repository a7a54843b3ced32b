"""`openrag-tui pools deploy|status|teardown` and `openrag-tui scale POOL N`.

`scale` writes the new size into the shared .env (RAY_POOL_SIZE / MARKER_POOL_SIZE) so a restart
keeps it, but only once the cluster answered: bad input or an unreachable cluster changes nothing.
Exit codes: 0 done, 1 not reached (pending, superseded, not deployed), 2 bad input or an edit
the .env refused, 3 the cluster is unreachable.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from openrag_tui.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    UsageError,
    common_options,
    positive_float,
)
from openrag_tui.config import EnvEditRefused, EnvFile
from openrag_tui.pools.spec import POOLS, size_key
from openrag_tui.workspace import Workspace, open_workspace

if TYPE_CHECKING:  # control imports Ray: loaded only by the commands that connect
    from openrag_tui.pools.control import ScaleResult
    from openrag_tui.pools.roster import PoolState


class _Failed(Exception):
    """The command ran and must exit non-zero with this one line."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


Handler = Callable[[argparse.Namespace, Console, Console], int]


def _one_line_failures(handler: Handler) -> Handler:
    """A `_Failed` becomes its line on stderr and its exit code, never a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, console: Console, errors: Console) -> int:
        try:
            return handler(args, console, errors)
        except _Failed as failure:
            errors.print(f"openrag-tui: {failure}", markup=False)
            return failure.code

    return run


def register(commands: argparse._SubParsersAction) -> None:
    pools = commands.add_parser("pools", help="deploy, inspect or tear down the indexer and marker")
    actions = pools.add_subparsers(dest="pools_command", metavar="ACTION", parser_class=type(pools))
    actions.required = True
    deploy = actions.add_parser("deploy", help="start both pools at their .env sizes (idempotent)")
    _wait_options(deploy)
    deploy.set_defaults(handler=run_deploy)
    status = actions.add_parser("status", help="target, alive, pending, retiring, in flight")
    status.set_defaults(handler=run_status)
    teardown = actions.add_parser("teardown", help="end both pools now (asks first)")
    teardown.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    teardown.set_defaults(handler=run_teardown)

    scale = commands.add_parser("scale", help="resize a pool live and write its size to the .env")
    scale.add_argument("pool", choices=POOLS, metavar="POOL", help="indexer or marker")
    scale.add_argument("size", type=_size, metavar="N", help="actors wanted (0 or more)")
    scale.add_argument(
        "--deploy", action="store_true", help="deploy the pools first if they are not yet"
    )
    _wait_options(scale)
    scale.set_defaults(handler=run_scale)

    for parser in (deploy, status, teardown, scale):
        common_options(parser)
        parser.add_argument(
            "--address",
            metavar="ADDR",
            help="Ray address (default: RAY_HEAD_ADDRESS, then RAY_ADDRESS, then auto)",
        )
    for parser in (deploy, status, scale):
        parser.add_argument("--json", action="store_true", help="print one JSON object")


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait", action="store_true", help="return at once instead of waiting for the actors"
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=60.0, metavar="S", help="wait at most S seconds"
    )


def _size(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"N must be a whole number of 0 or more, got {text!r}")
    return int(text)


# The commands


@_one_line_failures
def run_scale(args: argparse.Namespace, console: Console, _errors: Console) -> int:
    from openrag_tui.pools import control

    workspace = open_workspace(args.env, args.dashboard)
    with _connected(workspace, args):
        if args.deploy:
            control.deploy(workspace.settings)
        control.state(args.pool)  # not deployed: fails here, before the .env is touched
        _write_size(workspace, args.pool, args.size)
        progress = None if args.json else _progress_printer(console)
        result = control.scale(
            args.pool, args.size, wait=not args.no_wait, timeout=args.timeout, on_progress=progress
        )
        if result.state.pending:
            result = _explained(workspace, result)
    key = size_key(args.pool)
    if args.json:
        _print_json({**_result_dict(result), "env": str(workspace.location.path), "env_key": key})
    else:
        _print_result(console, result)
        console.print(f"{key}={args.size} written to {workspace.location.path}", markup=False)
    return EXIT_OK if args.no_wait or result.outcome == "reached" else EXIT_FAILED


@_one_line_failures
def run_deploy(args: argparse.Namespace, console: Console, _errors: Console) -> int:
    from openrag_tui.pools import control

    workspace = open_workspace(args.env, args.dashboard)
    with _connected(workspace, args):
        states = control.deploy(workspace.settings)
        results = [
            control.wait_for(pool, state.target, timeout=0 if args.no_wait else args.timeout)
            for pool, state in states.items()
        ]
        results = [_explained(workspace, r) if r.state.pending else r for r in results]
    if args.json:
        _print_json({r.pool: _result_dict(r) for r in results})
    else:
        for result in results:
            _print_result(console, result)
    reached = all(r.outcome == "reached" for r in results)
    return EXIT_OK if args.no_wait or reached else EXIT_FAILED


@_one_line_failures
def run_status(args: argparse.Namespace, console: Console, _errors: Console) -> int:
    from openrag_tui.pools import control

    workspace = open_workspace(args.env, args.dashboard)
    with _connected(workspace, args):
        states = control.status()
    if args.json:
        _print_json({pool: _state_dict(state) for pool, state in states.items()})
        return EXIT_OK
    console.print(_status_table(states, workspace.settings.namespace))
    return EXIT_OK


@_one_line_failures
def run_teardown(args: argparse.Namespace, console: Console, _errors: Console) -> int:
    from openrag_tui.pools import control

    workspace = open_workspace(args.env, args.dashboard)
    namespace = workspace.settings.namespace
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("pools teardown asks for confirmation: pass --yes without a terminal")
    question = f"End both pools in namespace {namespace!r}, tasks in flight included? [y/N] "
    if not args.yes and console.input(question).strip().lower() not in ("y", "yes"):
        console.print("Nothing was ended.")
        return EXIT_OK
    with _connected(workspace, args):
        ended = control.teardown()
    console.print(f"ended {len(ended)} actors in namespace {namespace!r}", markup=False)
    return EXIT_OK


# Shared steps


@contextmanager
def _connected(workspace: Workspace, args: argparse.Namespace) -> Iterator[None]:
    """Connect with Ray's output sent to the log file; map pool errors to one line and a code."""
    from openrag_tui.logfile import send_logs_to_file
    from openrag_tui.pools import control

    send_logs_to_file()
    try:
        control.connect(workspace.settings, args.address, silence_fds=True)
        yield
    except control.ClusterUnreachable as error:
        raise _Failed(str(error), EXIT_UNREACHABLE) from None
    except control.PoolsNotDeployed as error:
        raise _Failed(str(error), EXIT_FAILED) from None


def _write_size(workspace: Workspace, pool: str, size: int) -> None:
    """Set the pool's size in the .env, read again just before (it may have changed since)."""
    from openrag_tui.pools.control import record_size

    path = workspace.location.path
    env = EnvFile.read(path) if path.exists() else EnvFile.empty(path)
    try:
        record_size(env, pool, size)
    except EnvEditRefused as refused:
        problems = "; ".join(p.message for p in refused.problems) or str(refused)
        raise UsageError(f"{path} left unchanged, pool not resized: {problems}") from None


def _explained(workspace: Workspace, result: ScaleResult) -> ScaleResult:
    """Add the cluster view's reason for each pending actor (the dashboard knows, Ray does not)."""
    from openrag_tui.cluster.dashboard import DashboardError
    from openrag_tui.cluster.refresh import read_view
    from openrag_tui.pools.control import explain_pending

    client = workspace.client()
    try:
        return explain_pending(result, read_view(client, workspace.settings))
    except DashboardError as error:
        return dataclasses.replace(result, why_unknown=str(error))
    finally:
        client.close()


def _progress_printer(console: Console) -> Callable[[PoolState], None]:
    """Print a line each time the counts change."""
    last: list[tuple[int, int, int]] = []

    def show(state: PoolState) -> None:
        counts = (state.alive, state.pending, state.retiring)
        if last != [counts]:
            last[:] = [counts]
            console.print(f"  {_counts_text(state)}", markup=False)

    return show


def _counts_text(state: PoolState) -> str:
    return (
        f"{state.pool}: {state.alive} alive, {state.pending} pending, "
        f"{state.retiring} retiring (target {state.target})"
    )


def _print_result(console: Console, result: ScaleResult) -> None:
    words = {
        "reached": "reached",
        "superseded": f"superseded by a later resize to {result.state.target}",
        "unsettled": "not reached yet",
    }
    console.print(f"{_counts_text(result.state)}: {words[result.outcome]}", markup=False)
    for item in result.why_pending:
        console.print(f"  {item.name} pending ({item.reason}): {item.detail}", markup=False)
    if result.why_unknown:
        console.print(f"  why pending is unknown: {result.why_unknown}", markup=False)


def _status_table(states: dict[str, PoolState | None], namespace: str) -> Table:
    table = Table(title=f"pools in namespace {namespace!r}", title_justify="left")
    columns = ("target", "alive", "pending", "retiring", "in_flight", "waiting", "slots")
    table.add_column("pool")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for pool, state in states.items():
        if state is None:
            table.add_row(pool, "not deployed", *[""] * (len(columns) - 1))
        else:
            table.add_row(pool, *(str(getattr(state, column)) for column in columns))
    return table


def _state_dict(state: PoolState | None) -> dict[str, Any] | None:
    return None if state is None else {**dataclasses.asdict(state), "settled": state.settled}


def _result_dict(result: ScaleResult) -> dict[str, Any]:
    return {
        "pool": result.pool,
        "requested": result.requested,
        "outcome": result.outcome,
        "state": _state_dict(result.state),
        "why_pending": [dataclasses.asdict(item) for item in result.why_pending],
        "why_unknown": result.why_unknown,
    }


def _print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()
