"""`openrag-tui up` and `openrag-tui down`: start or stop the cluster, streaming Ray's output.

Exit codes: 0 up (or down) as the dashboard confirms, 1 failed or cancelled, 2 bad input (nothing
was run), 3 Ray reported success but the dashboard cannot be reached from here.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from openrag_tui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    Output,
    UsageError,
    changes,
    common_options,
    open_workspace_of,
    whole_number,
)

if TYPE_CHECKING:
    from openrag_tui.cluster.lifecycle import ClusterRun
    from openrag_tui.cluster.targets import Target
    from openrag_tui.workspace import Workspace

from openrag_tui.config import Settings

CLUSTER_CONFIG_KEY = Settings.env_key("cluster_config")  # named in --help
LOCAL_GPUS_KEY = Settings.env_key("local_gpus")


def register(commands: argparse._SubParsersAction) -> None:
    up = commands.add_parser("up", help="start the cluster: a local head, or ray up a cluster.yaml")
    common_options(up)
    _target_options(up)
    up.add_argument(
        "--wait", action="store_true", help="also wait until every node of the cluster.yaml joined"
    )
    up.add_argument(
        "--gpus",
        type=whole_number,
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


@changes
def run_up(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.cluster.lifecycle import start_run

    workspace = open_workspace_of(args)
    target = _target(workspace, args, gpus=args.gpus)
    client = workspace.client()
    try:
        run = start_run(target, workspace.settings, workspace.location.path, client, wait=args.wait)
        return _follow(run, out)
    finally:
        client.close()


@changes
def run_down(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.cluster.lifecycle import stop_run
    from openrag_tui.cluster.targets import LocalHead

    workspace = open_workspace_of(args)
    target = _target(workspace, args)
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("down asks for confirmation: pass --yes to stop without a terminal")
    if not _preview(target, out):
        return EXIT_OK
    question = "Stop them?" if isinstance(target, LocalHead) else "Tear it down?"
    if not args.yes and not _confirmed(question):
        out.say("Nothing was stopped.")
        return EXIT_OK
    client = workspace.client()
    try:
        return _follow(stop_run(target, workspace.settings, workspace.location.path, client), out)
    finally:
        client.close()


def _confirmed(question: str) -> bool:
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _target(workspace: Workspace, args: argparse.Namespace, gpus: int | None = None) -> Target:
    from openrag_tui.cluster.targets import choose_target

    return choose_target(
        workspace.settings,
        workspace.location.path.parent,
        cluster_config=args.cluster_config,
        local=args.local,
        gpus=gpus,
    )


def _preview(target: Target, out: Output) -> bool:
    """Say what a stop will end; False when there is nothing to stop on this machine."""
    from openrag_tui.cluster.processes import ray_processes
    from openrag_tui.cluster.targets import LocalHead

    if not isinstance(target, LocalHead):
        out.say(f"ray down will tear down {target.description}.")
        return True
    found = ray_processes()
    if not found:
        out.say("No Ray processes run on this machine: nothing to stop.")
        return False
    out.say(f"ray stop will end these {len(found)} Ray processes on this machine:")
    for process in found:
        out.say(str(process))
    return True


def _follow(run: ClusterRun, out: Output) -> int:
    """Print the run's lines as they come; Ctrl-C cancels it and still waits for the clean-up."""
    from openrag_tui.cluster.lifecycle import Outcome, Result

    exit_codes = {
        Outcome.OK: EXIT_OK,
        Outcome.FAILED: EXIT_FAILED,
        Outcome.CANCELLED: EXIT_FAILED,
        Outcome.UNREACHABLE: EXIT_UNREACHABLE,
    }
    lines = iter(run)
    try:
        for line in lines:
            out.say(line)
    except KeyboardInterrupt:
        run.cancel()
        for line in lines:
            out.say(line)
    result = run.result or Result(Outcome.CANCELLED, f"{run.title} was interrupted.")
    if result.ok:
        out.say(f"{result.message} ({run.elapsed:.0f} s)")
    else:
        out.warn(result.message)
    return exit_codes[result.outcome]
