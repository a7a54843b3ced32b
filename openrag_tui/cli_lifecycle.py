"""`openrag-tui up` and `openrag-tui down`: start or stop the cluster, streaming Ray's output.

Exit codes: 0 up (or down) as the dashboard confirms, 1 failed or cancelled, 2 bad input (nothing
was run), 3 Ray reported success but the dashboard cannot be reached from here.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from openrag_tui.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    UsageError,
    common_options,
)
from openrag_tui.cluster.lifecycle import ClusterRun, Outcome, Result, start_run, stop_run
from openrag_tui.cluster.processes import ray_processes
from openrag_tui.cluster.targets import (
    CLUSTER_CONFIG_KEY,
    LOCAL_GPUS_KEY,
    LifecycleError,
    LocalHead,
    Target,
    choose_target,
)
from openrag_tui.workspace import Workspace, open_workspace

_EXIT = {
    Outcome.OK: EXIT_OK,
    Outcome.FAILED: EXIT_FAILED,
    Outcome.CANCELLED: EXIT_FAILED,
    Outcome.UNREACHABLE: EXIT_UNREACHABLE,
}


def register(commands: argparse._SubParsersAction) -> None:
    up = commands.add_parser("up", help="start the cluster: a local head, or ray up a cluster.yaml")
    common_options(up)
    _target_options(up)
    up.add_argument(
        "--wait", action="store_true", help="also wait until every node of the cluster.yaml joined"
    )
    up.add_argument(
        "--gpus",
        type=_gpu_count,
        metavar="N",
        help=f"GPUs a local head declares, for machines without (default: ${LOCAL_GPUS_KEY})",
    )
    up.set_defaults(handler=run_up)

    down = commands.add_parser("down", help="stop the cluster (asks first)")
    common_options(down)
    _target_options(down)
    down.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    down.set_defaults(handler=run_down)


def _target_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--cluster-config",
        metavar="PATH",
        help=f"a cluster.yaml for ray up / ray down (default: ${CLUSTER_CONFIG_KEY})",
    )
    which.add_argument(
        "--local",
        action="store_true",
        help="a head on this machine (ray start / ray stop), even if the .env names a cluster.yaml",
    )


def run_up(args: argparse.Namespace, console: Console, errors: Console) -> int:
    workspace = open_workspace(args.env, args.dashboard)
    target = _target(workspace, args, gpus=args.gpus)
    client = workspace.client()
    try:
        run = start_run(target, workspace.settings, workspace.location.path, client, wait=args.wait)
        return _follow(run, console, errors)
    finally:
        client.close()


def run_down(args: argparse.Namespace, console: Console, errors: Console) -> int:
    workspace = open_workspace(args.env, args.dashboard)
    target = _target(workspace, args)
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("down asks for confirmation: pass --yes to stop without a terminal")
    if not _preview(target, console):
        return EXIT_OK
    question = "Stop them?" if isinstance(target, LocalHead) else "Tear it down?"
    if not args.yes and not _confirmed(console, question):
        console.print("Nothing was stopped.")
        return EXIT_OK
    client = workspace.client()
    try:
        return _follow(
            stop_run(target, workspace.settings, workspace.location.path, client), console, errors
        )
    finally:
        client.close()


def _confirmed(console: Console, question: str) -> bool:
    return console.input(f"{question} [y/N] ", markup=False).strip().lower() in ("y", "yes")


def _target(workspace: Workspace, args: argparse.Namespace, gpus: int | None = None) -> Target:
    try:
        return choose_target(
            workspace.settings,
            workspace.location.path.parent,
            cluster_config=args.cluster_config,
            local=args.local,
            gpus=gpus,
        )
    except LifecycleError as error:
        raise UsageError(str(error)) from None


def _preview(target: Target, console: Console) -> bool:
    """Say what a stop will end; False when there is nothing to stop on this machine."""
    if not isinstance(target, LocalHead):
        console.print(f"ray down will tear down {target.description}.", markup=False)
        return True
    found = ray_processes()
    if not found:
        console.print("No Ray processes run on this machine: nothing to stop.")
        return False
    console.print(f"ray stop will end these {len(found)} Ray processes on this machine:")
    for process in found:
        console.print(str(process), markup=False, highlight=False)
    return True


def _follow(run: ClusterRun, console: Console, errors: Console) -> int:
    """Print the run's lines as they come; Ctrl-C cancels it and still waits for the clean-up."""
    lines = iter(run)
    try:
        for line in lines:
            console.print(line, markup=False, highlight=False)
    except KeyboardInterrupt:
        run.cancel()
        for line in lines:
            console.print(line, markup=False, highlight=False)
    result = run.result or Result(Outcome.CANCELLED, f"{run.title} was interrupted.")
    if result.ok:
        console.print(f"{result.message} ({run.elapsed:.0f} s)", markup=False)
    else:
        errors.print(f"openrag-tui: {result.message}", markup=False)
    return _EXIT[result.outcome]


def _gpu_count(text: str) -> int:
    """An argparse type: a whole number of GPUs, 0 or more (what `ray start --num-gpus` takes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value
