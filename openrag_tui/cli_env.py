"""`openrag-tui env show|check|set`: the shared .env from scripts, secrets masked."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from openrag_tui.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    common_options,
    problem_dict,
    problem_text,
)
from openrag_tui.config import FIELDS, EnvEditRefused, Severity, mask_value, set_env_values
from openrag_tui.workspace import Workspace, open_workspace


def register(commands: argparse._SubParsersAction) -> None:
    env = commands.add_parser("env", help="show, check or edit the shared .env")
    actions = env.add_subparsers(dest="env_command", metavar="ACTION", parser_class=type(env))
    actions.required = True
    show = actions.add_parser("show", help="settings with their values (secrets masked)")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=run_show)
    check = actions.add_parser("check", help="validate: exit 1 on errors, 0 on warnings only")
    check.add_argument("--json", action="store_true", help="print the problems as JSON")
    check.set_defaults(handler=run_check)
    set_ = actions.add_parser("set", help="set KEY=VALUE pairs, validated, atomically")
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    set_.set_defaults(handler=run_set)
    for parser in (show, check, set_):
        common_options(parser)


def run_set(args: argparse.Namespace, console: Console, _errors: Console) -> int:
    workspace = open_workspace(args.env, args.dashboard)
    updates: dict[str, str] = {}
    for assignment in args.assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {assignment!r}")
        updates[key] = value
    try:
        saved = set_env_values(workspace.env, updates)
    except EnvEditRefused as refused:
        problems = "; ".join(problem_text(p) for p in refused.problems) or str(refused)
        raise UsageError(f"{workspace.location.path} left unchanged: {problems}") from None
    console.print(f"updated {', '.join(updates)} in {saved.path}", markup=False)
    return EXIT_OK


def run_check(args: argparse.Namespace, console: Console, _errors: Console) -> int:
    workspace = open_workspace(args.env, args.dashboard)
    problems = workspace.settings.problems
    if args.json:
        print(json.dumps([problem_dict(p) for p in problems]))
    else:
        console.print(source_line(workspace), markup=False)
        for problem in problems:
            style = "red" if problem.severity == Severity.ERROR else "yellow"
            console.print(f"[{style}]{problem.severity.value}[/] ", end="")
            console.print(problem_text(problem), markup=False)
        if not problems:
            console.print("no problems")
    return EXIT_FAILED if workspace.settings.errors else EXIT_OK


def run_show(args: argparse.Namespace, console: Console, _errors: Console) -> int:
    workspace = open_workspace(args.env, args.dashboard)
    rows = env_rows(workspace)
    if args.json:
        payload = {
            "path": str(workspace.location.path),
            "source": workspace.location.source,
            "exists": workspace.location.exists,
            "values": {row["key"]: row["value"] for row in rows},
            "settings": rows,
            "problems": [problem_dict(p) for p in workspace.settings.problems],
        }
        print(json.dumps(payload))
        return EXIT_OK
    console.print(source_line(workspace), markup=False)
    console.print(env_table(rows))
    return EXIT_OK


def source_line(workspace: Workspace) -> str:
    """Which file was used, and why: the CLI always says so."""
    location = workspace.location
    missing = "" if location.exists else " (missing: OpenRAG's defaults apply)"
    return f"{location.path} (from {location.source}){missing}"


def env_rows(workspace: Workspace) -> list[dict[str, Any]]:
    """Known settings first (with defaults), then the file's other keys, as plain dicts."""
    values = workspace.env.values
    rows = [
        {
            "key": key,
            "value": mask_value(key, values.get(key)),
            "default": None if info.default is None else str(info.default),
            "line": workspace.env.line_of(key),
            "known": True,
            "description": info.description,
        }
        for key, info in FIELDS.items()
    ]
    rows += [
        {
            "key": key,
            "value": mask_value(key, value),
            "default": None,
            "line": workspace.env.line_of(key),
            "known": False,
            "description": "",
        }
        for key, value in values.items()
        if key not in FIELDS
    ]
    return rows


def env_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(expand=False, pad_edge=False)
    for column in ("line", "key", "value", "default"):
        table.add_column(column, no_wrap=column != "value", overflow="fold")
    for row in rows:
        value = row["value"]
        table.add_row(
            str(row["line"] or ""),
            row["key"],
            "[dim](unset)[/]" if value is None else value.replace("[", r"\["),
            row["default"] or "",
        )
    return table
