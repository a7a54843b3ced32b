"""`openrag-tui pools deploy|status|teardown` and `openrag-tui scale POOL N`.

`scale` writes the new size into the shared .env (RAY_POOL_SIZE / MARKER_POOL_SIZE) so a restart
keeps it, but only once the cluster answered: bad input or an unreachable cluster changes nothing.
With `--jsonl` it reports each change of the counts as a `progress` event and ends with a
`result` event (the panel follows a resize that way). Exit codes: 0 done, 1 not reached
(pending, superseded, not deployed), 2 bad input or an edit the .env refused, 3 the cluster is
unreachable.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
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
    positive_float,
    whole_number,
)
from openrag_tui.config.pools import POOLS, size_key

if TYPE_CHECKING:  # control imports Ray: loaded only by the commands that connect
    from rich.table import Table

    from openrag_tui.pools.control import ScaleResult
    from openrag_tui.pools.roster import PoolState
    from openrag_tui.workspace import Workspace


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
    scale.add_argument("size", type=whole_number, metavar="N", help="actors wanted (0 or more)")
    scale.add_argument(
        "--deploy", action="store_true", help="deploy the pools first if they are not yet"
    )
    _wait_options(scale)
    jsonl_option(scale)
    scale.set_defaults(handler=run_scale)

    for parser in (deploy, status, teardown, scale):
        common_options(parser)
        address_option(parser)
    for parser in (deploy, status, scale):
        json_option(parser)


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait", action="store_true", help="return at once instead of waiting for the actors"
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=60.0, metavar="S", help="wait at most S seconds"
    )


# The commands


@changes
def run_scale(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.pools import control

    workspace = open_workspace_of(args)
    with connected(workspace, args.address):
        if args.deploy:
            control.deploy(workspace.settings)
        control.state(args.pool)  # not deployed: fails here, before the .env is touched
        _write_size(workspace, args.pool, args.size)
        result = control.scale(
            args.pool,
            args.size,
            wait=not args.no_wait,
            timeout=args.timeout,
            on_progress=_progress_reporter(out),
        )
        if result.state.pending:
            result = _explained(workspace, result)
    key = size_key(args.pool)
    payload = {**_result_dict(result), "env": str(workspace.location.path), "env_key": key}
    if out.json_mode:
        out.json(payload)
    out.event("result", **payload)
    _print_result(out, result)
    out.say(f"{key}={args.size} written to {workspace.location.path}")
    return EXIT_OK if args.no_wait or result.outcome == "reached" else EXIT_FAILED


@changes
def run_deploy(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.pools import control

    workspace = open_workspace_of(args)
    with connected(workspace, args.address):
        states = control.deploy(workspace.settings)
        if workspace.settings.autopilot == "on":
            from openrag_tui.indexing import autopilot

            autopilot.start(workspace.settings, workspace.location.path)
        results = [
            control.wait_for(pool, state.target, timeout=0 if args.no_wait else args.timeout)
            for pool, state in states.items()
        ]
        results = [_explained(workspace, r) if r.state.pending else r for r in results]
    if out.json_mode:
        out.json({r.pool: _result_dict(r) for r in results})
    for result in results:
        _print_result(out, result)
    reached = all(r.outcome == "reached" for r in results)
    return EXIT_OK if args.no_wait or reached else EXIT_FAILED


def run_status(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.pools import control

    workspace = open_workspace_of(args)
    with connected(workspace, args.address):
        states = control.status()
    if out.json_mode:
        out.json({pool: _state_dict(state) for pool, state in states.items()})
    else:
        out.print(_status_table(states, workspace.settings.namespace))
    return EXIT_OK


@changes
def run_teardown(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.pools import control

    workspace = open_workspace_of(args)
    namespace = workspace.settings.namespace
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("pools teardown asks for confirmation: pass --yes without a terminal")
    question = f"End both pools in namespace {namespace!r}, tasks in flight included? [y/N] "
    if not args.yes and input(question).strip().lower() not in ("y", "yes"):
        out.say("Nothing was ended.")
        return EXIT_OK
    with connected(workspace, args.address):
        ended = control.teardown()
    out.say(f"ended {len(ended)} actors in namespace {namespace!r}")
    return EXIT_OK


# Shared steps


def _write_size(workspace: Workspace, pool: str, size: int) -> None:
    """Set the pool's size in the .env as it is now (it may have changed since it was read)."""
    from openrag_tui.config import EnvEditRefused, EnvFile
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


def _progress_reporter(out: Output) -> Callable[[PoolState], None]:
    """A line (or a `progress` event) each time the counts change."""
    last: list[tuple[int, int, int]] = []

    def report(state: PoolState) -> None:
        counts = (state.alive, state.pending, state.retiring)
        if last != [counts]:
            last[:] = [counts]
            out.say(f"  {_counts_text(state)}")
            out.event("progress", **_counts(state))

    return report


def _counts(state: PoolState) -> dict[str, Any]:
    return {
        "pool": state.pool,
        "target": state.target,
        "alive": state.alive,
        "pending": state.pending,
        "retiring": state.retiring,
    }


def _counts_text(state: PoolState) -> str:
    return (
        f"{state.pool}: {state.alive} alive, {state.pending} pending, "
        f"{state.retiring} retiring (target {state.target})"
    )


OUTCOME_WORDS = {"reached": "reached", "unsettled": "not reached yet"}


def _print_result(out: Output, result: ScaleResult) -> None:
    words = OUTCOME_WORDS.get(
        result.outcome, f"superseded by a later resize to {result.state.target}"
    )
    out.say(f"{_counts_text(result.state)}: {words}")
    for item in result.why_pending:
        out.say(f"  {item.name} pending ({item.reason}): {item.detail}")
    if result.why_unknown:
        out.say(f"  why pending is unknown: {result.why_unknown}")


def _status_table(states: dict[str, PoolState | None], namespace: str) -> Table:
    from rich.table import Table

    from openrag_tui.formats import plain

    table = Table(title=plain(f"pools in namespace {namespace!r}"), title_justify="left")
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
