"""`openrag-tui status`: the cluster view as rich tables or one JSON object."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from openrag_tui.cli.common import (
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Output,
    common_options,
    json_option,
    open_workspace_of,
    positive_float,
)

if TYPE_CHECKING:
    from openrag_tui.cluster.state import ClusterState
    from openrag_tui.indexing.openrag.queue import OpenRagQueue
    from openrag_tui.indexing.paths import Where
    from openrag_tui.workspace import Workspace


def register(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser("status", help="GPU allocation per node, pools, pending actors")
    common_options(status)
    json_option(status)
    status.add_argument(
        "--watch", type=positive_float, metavar="SECONDS", help="repeat every SECONDS"
    )
    status.set_defaults(handler=run_status)


def run_status(args: argparse.Namespace, out: Output) -> int:
    """Print the status once, or every --watch seconds until interrupted; exit 2 when the .env
    has errors (after printing), 3 when the dashboard does not answer."""
    workspace = open_workspace_of(args)
    for problem in workspace.settings.errors:
        out.warn(f"{workspace.location.path}: {problem.text}")
    env_code = EXIT_USAGE if workspace.settings.errors else EXIT_OK
    if args.watch is None:
        return _status_once(workspace, out, None)[0] or env_code
    previous = None
    try:
        while True:
            if out.human:
                out.stdout.write("\x1b[H\x1b[2J")  # clear the screen between reports
            previous = _status_once(workspace, out, previous)[1] or previous
            time.sleep(args.watch)
            workspace = workspace.reloaded()
    except KeyboardInterrupt:
        return env_code


def _status_once(
    workspace: Workspace, out: Output, previous: ClusterState | None
) -> tuple[int, ClusterState | None]:
    """One report; the exit code, and the state read (for the next report's "since")."""
    from openrag_tui.cluster.dashboard import DashboardError

    client = workspace.client()
    try:
        client.prefetch()  # the dashboard answers while the modules below load
        from openrag_tui.cluster.refresh import read_view
        from openrag_tui.cluster.summary import view_summary
        from openrag_tui.indexing.vectorstatus import vector_store_status

        view = read_view(client, workspace.settings, previous=previous)
    except DashboardError as error:
        out.warn(str(error))
        return EXIT_UNREACHABLE, None
    finally:
        client.close()
    vectors = vector_store_status(workspace.settings, _where_of(workspace))
    queue = openrag_queue_of(workspace)
    if out.json_mode:
        out.json(
            {
                **view_summary(view, workspace.dashboard_display),
                "vector_store": vectors.to_dict(),
                "openrag": None if queue is None else queue.to_dict(),
            }
        )
    else:
        from openrag_tui.render import render_view

        out.print(render_view(view, workspace.dashboard_display, vectors, queue))
    return EXIT_OK, view.state


def _where_of(workspace: Workspace) -> Where | None:
    from openrag_tui.indexing.paths import BadPath, Where

    try:
        return Where.of(workspace.settings, workspace.location.path.parent)
    except BadPath:
        return None


def openrag_queue_of(workspace: Workspace) -> OpenRagQueue | None:
    """OpenRAG's queue, when the .env names OpenRAG or a batch went there (else None)."""
    from openrag_tui.indexing.openrag.queue import openrag_queue, wanted

    where = _where_of(workspace)
    if not wanted(workspace.settings, where):
        return None
    return openrag_queue(workspace.settings, where, str(workspace.location.path))
