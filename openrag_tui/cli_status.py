"""`openrag-tui status`: the cluster view as rich tables or one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
import time

from rich.console import Console

from openrag_tui.cli_common import common_options, positive_float, problem_text
from openrag_tui.cluster.dashboard import DashboardError
from openrag_tui.cluster.refresh import read_view
from openrag_tui.cluster.summary import view_as_dict
from openrag_tui.render import render_view
from openrag_tui.workspace import Workspace, open_workspace

EXIT_OK, EXIT_ENV_ERRORS, EXIT_UNREACHABLE = 0, 2, 3


def register(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser("status", help="GPU allocation per node, pools, pending actors")
    common_options(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--watch", type=positive_float, metavar="SECONDS", help="repeat every SECONDS"
    )
    status.set_defaults(handler=run_status)


def run_status(args: argparse.Namespace, console: Console, errors: Console) -> int:
    """Print the status once, or every --watch seconds until interrupted."""
    workspace = open_workspace(args.env, args.dashboard)
    for problem in workspace.settings.errors:
        errors.print(
            f"openrag-tui: {workspace.location.path}: {problem_text(problem)}", markup=False
        )
    env_code = EXIT_ENV_ERRORS if workspace.settings.errors else EXIT_OK
    if args.watch is None:
        return _status_once(workspace, args.json, console, errors) or env_code
    try:
        while True:
            if not args.json:
                console.clear()
            _status_once(workspace, args.json, console, errors)
            time.sleep(args.watch)
            workspace = workspace.reloaded()
    except KeyboardInterrupt:
        return env_code


def _status_once(workspace: Workspace, as_json: bool, console: Console, errors: Console) -> int:
    client = workspace.client()
    try:
        view = read_view(client, workspace.settings)
    except DashboardError as error:
        errors.print(f"openrag-tui: {error}", markup=False)
        return EXIT_UNREACHABLE
    finally:
        client.close()
    if as_json:
        sys.stdout.write(json.dumps(view_as_dict(view, workspace.dashboard_url)) + "\n")
        sys.stdout.flush()
    else:
        console.print(render_view(view, workspace.dashboard_url))
    return EXIT_OK
