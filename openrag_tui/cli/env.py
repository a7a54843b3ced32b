"""`openrag-tui env show|check|set`: the shared .env from scripts, secrets masked.

`show` and `--json` give each value as written (a `${NAME}` reference stays a reference), with
the one masking rule applied; `check` exits 1 when the file has errors (an unparsable line
included); `set` validates, refuses typos of known keys and new keys without `--add`, and
writes atomically, taking turns with every other writer.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from openrag_tui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Output,
    UsageError,
    changes,
    common_options,
    json_option,
    open_workspace_of,
)
from openrag_tui.formats import plain

if TYPE_CHECKING:
    from rich.table import Table

    from openrag_tui.config import Problem
    from openrag_tui.workspace import Workspace


def register(commands: argparse._SubParsersAction) -> None:
    env = commands.add_parser("env", help="show, check or edit the shared .env")
    actions = env.add_subparsers(dest="env_command", metavar="ACTION", parser_class=type(env))
    actions.required = True
    show = actions.add_parser("show", help="settings with their values (secrets masked)")
    json_option(show)
    show.set_defaults(handler=run_show)
    check = actions.add_parser("check", help="validate: exit 1 on errors, 0 on warnings only")
    check.add_argument("--json", action="store_true", help="print the problems as JSON")
    check.set_defaults(handler=run_check)
    set_ = actions.add_parser("set", help="set KEY=VALUE pairs, validated, atomically")
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    set_.add_argument(
        "--add", action="store_true", help="allow keys the file does not have and none knows"
    )
    set_.set_defaults(handler=run_set)
    for parser in (show, check, set_):
        common_options(parser)


@changes
def run_set(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.config import EnvEditRefused, set_env_values

    updates: dict[str, str] = {}
    for assignment in args.assignments:
        key, sep, value = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {assignment!r}")
        updates[key] = value.strip()  # the shell's quoting, not the value's: " 3 " is 3
    workspace = open_workspace_of(args)
    try:
        saved = set_env_values(workspace.env, updates, allow_new=args.add, expected={})
    except EnvEditRefused as refused:
        problems = "; ".join(p.text for p in refused.problems) or str(refused)
        raise UsageError(f"{workspace.location.path} left unchanged: {problems}") from None
    out.say(f"updated {', '.join(updates)} in {saved.path}")
    return EXIT_OK


def run_check(args: argparse.Namespace, out: Output) -> int:
    from rich.text import Text

    workspace = open_workspace_of(args)
    problems = workspace.settings.problems
    if args.json:
        out.json([problem_dict(p) for p in problems])
    else:
        out.say(source_line(workspace))
        for problem in problems:
            style = "red" if problem.severity.value == "error" else "yellow"
            out.print(Text.assemble((problem.severity.value, style), " ", plain(problem.text)))
        if not problems:
            out.say("no problems")
    return EXIT_FAILED if workspace.settings.errors else EXIT_OK


def run_show(args: argparse.Namespace, out: Output) -> int:
    workspace = open_workspace_of(args)
    rows = env_rows(workspace)
    if args.json:
        out.json(
            {
                "path": str(workspace.location.path),
                "source": workspace.location.source,
                "exists": workspace.location.exists,
                "values": {row["key"]: row["value"] for row in rows},
                "settings": rows,
                "problems": [problem_dict(p) for p in workspace.settings.problems],
            }
        )
        return EXIT_OK
    out.say(source_line(workspace))
    out.print(env_table(rows))
    return EXIT_OK


def source_line(workspace: Workspace) -> str:
    """Which file was used, and why: the CLI always says so."""
    location = workspace.location
    missing = "" if location.exists else " (missing: OpenRAG's defaults apply)"
    return f"{location.path} (from {location.source}){missing}"


def problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "variable": problem.variable,
        "line": problem.line,
        "severity": problem.severity.value,
        "message": problem.message,
    }


def env_rows(workspace: Workspace) -> list[dict[str, Any]]:
    """Known settings first (with defaults), then the file's other keys, as plain dicts; each
    value as written in the file, masked by the one rule."""
    from openrag_tui.config import FIELDS, mask_value

    values = workspace.env.raw_values

    def row(key: str, known: bool) -> dict[str, Any]:
        info = FIELDS.get(key)
        default = None if info is None or info.default is None else str(info.default)
        return {
            "key": key,
            "value": mask_value(key, values.get(key)),
            "default": default,
            "line": workspace.env.line_of(key),
            "known": known,
            "description": info.description if info else "",
        }

    return [row(key, True) for key in FIELDS] + [
        row(key, False) for key in values if key not in FIELDS
    ]


def env_table(rows: list[dict[str, Any]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(expand=False, pad_edge=False)
    for column in ("line", "key"):
        table.add_column(column, no_wrap=True)
    # the value matters most: at 80 columns the defaults give way, not the values
    table.add_column("value", overflow="fold", min_width=28)
    table.add_column("default", overflow="fold")
    for row in rows:
        value = row["value"]
        table.add_row(
            str(row["line"] or ""),
            plain(row["key"]),
            Text("(unset)", style="dim") if value is None else plain(value),
            plain(row["default"] or ""),
        )
    return table
