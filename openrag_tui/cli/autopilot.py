"""`openrag-tui autopilot on|off|status`: our pools follow the ledger's backlog, or not.

`on` and `off` write `OPENRAG_TUI_AUTOPILOT` into the shared .env (the one source of truth: the
autopilot reads it at every look) and start or end the detached autopilot actor. `status`
reads the autopilot's files beside the ledger, without joining the cluster.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from openrag_tui.cli.common import (
    EXIT_OK,
    Output,
    UsageError,
    address_option,
    changes,
    common_options,
    connected,
    json_option,
    open_workspace_of,
    whole_number,
)

if TYPE_CHECKING:
    from openrag_tui.indexing.autopilot_log import AutopilotStatus

SWITCH = "OPENRAG_TUI_AUTOPILOT"


def register(commands: argparse._SubParsersAction) -> None:
    autopilot = commands.add_parser(
        "autopilot", help="let the pools follow the backlog (on), or not (off); its steps"
    )
    actions = autopilot.add_subparsers(
        dest="autopilot_command", metavar="ACTION", parser_class=type(autopilot)
    )
    actions.required = True
    on = actions.add_parser("on", help="write OPENRAG_TUI_AUTOPILOT=on and start the autopilot")
    on.set_defaults(handler=run_on)
    off = actions.add_parser("off", help="write OPENRAG_TUI_AUTOPILOT=off and end the autopilot")
    off.set_defaults(handler=run_off)
    status = actions.add_parser("status", help="on or off, its limits, its last steps")
    status.add_argument(
        "--steps", type=whole_number, default=10, metavar="N", help="show the last N steps"
    )
    status.set_defaults(handler=run_status)
    for parser in (on, off, status):
        common_options(parser)
        json_option(parser)
    for parser in (on, off):
        address_option(parser)


@changes
def run_on(args: argparse.Namespace, out: Output) -> int:
    return _switch(args, out, on=True)


@changes
def run_off(args: argparse.Namespace, out: Output) -> int:
    return _switch(args, out, on=False)


def _switch(args: argparse.Namespace, out: Output, on: bool) -> int:
    import ray

    from openrag_tui.config import EnvEditRefused, EnvFile, Settings, set_env_values
    from openrag_tui.indexing import autopilot

    workspace = open_workspace_of(args)
    path = workspace.location.path
    with connected(workspace, args.address):  # unreachable: nothing written
        try:
            env = set_env_values(EnvFile.read(path), {SWITCH: "on" if on else "off"})
        except EnvEditRefused as refused:
            problems = "; ".join(p.message for p in refused.problems) or str(refused)
            raise UsageError(f"{path} left unchanged: {problems}") from None
        out.say(f"{SWITCH}={'on' if on else 'off'} written to {path}")
        steps: list[dict[str, Any]] = []
        if on:
            handle = autopilot.start(Settings.from_envfile(env), path)
            steps = ray.get(handle.look.remote())
        else:
            if autopilot.stop():
                out.say("the autopilot was ended; the pools keep their sizes")
    status = _status(workspace)
    if out.json_mode:
        out.json({**_status_dict(status, workspace.settings), "steps_now": steps})
    for step in steps:
        out.say(f"  {_step_text(step)}")
    return EXIT_OK


def run_status(args: argparse.Namespace, out: Output) -> int:
    workspace = open_workspace_of(args)
    status = _status(workspace, args.steps)
    payload = _status_dict(status, workspace.settings)
    if out.json_mode:
        out.json(payload)
        return EXIT_OK
    switch = "on" if workspace.settings.autopilot == "on" else "off"
    running = "running" if payload["running"] else "not running"
    out.say(f"autopilot {switch} in {workspace.location.path}, {running}")
    for pool, limits in payload["limits"].items():
        top = "unset" if limits["max"] is None else limits["max"]
        memory = status.pools.get(pool, {})
        held = " · held: resized by hand" if memory.get("hold") is not None else ""
        out.say(f"  {pool}: min {limits['min']}, max {top}{held}")
    budget = payload["gpu_budget"]
    out.say(f"  GPU budget: {'unset' if budget is None else budget}, "
            f"idle after {payload['idle_seconds']:g} s")  # fmt: skip
    for step in status.steps:
        out.say(f"  {_step_text(step)}")
    return EXIT_OK


def _status(workspace: Any, steps: int = 10) -> AutopilotStatus:
    from openrag_tui.indexing.autopilot_log import read_status
    from openrag_tui.indexing.paths import Where

    where = Where.of(workspace.settings, workspace.location.path.parent)
    return read_status(where, steps)


def _status_dict(status: AutopilotStatus, settings: Any) -> dict[str, Any]:
    return {
        "enabled": settings.autopilot == "on",
        "running": status.running(time.time()),
        "looked_at": status.looked_at,
        "limits": {
            pool: {
                "min": getattr(settings, f"autopilot_{pool}_min"),
                "max": getattr(settings, f"autopilot_{pool}_max"),
            }
            for pool in ("indexer", "marker")
        },
        "gpu_budget": settings.autopilot_gpu_budget,
        "idle_seconds": settings.autopilot_idle_seconds,
        "pools": status.pools,
        "steps": status.steps,
    }


def _step_text(step: dict[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(step.get("at") or 0))
    if step.get("to") is None:
        return f"{when} {step.get('pool')}: {step.get('reason')}"
    pool, was, now, why = (step.get(key) for key in ("pool", "from", "to", "reason"))
    return f"{when} {pool} {was} -> {now}: {why}"
