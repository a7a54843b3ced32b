"""The command line: the panel without pixels. Each subcommand calls the core and prints.

Exit codes: 0 ok, 1 the command ran and found a failure, 2 bad arguments or .env errors,
3 the dashboard is unreachable (or refused us).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from rich.console import Console

from openrag_tui import __version__
from openrag_tui.config import EnvFileError, Severity

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input: one clear line, exit 2, nothing changed."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options accepted both before and after the subcommand."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--env",
        metavar="PATH",
        default=default,
        help="the shared .env (default: $SHARED_ENV, ./.env, /ray_mount/.env)",
    )
    parser.add_argument(
        "--dashboard",
        metavar="URL",
        default=default,
        help="Ray dashboard URL (default: from the .env, else http://127.0.0.1:$RAY_DASHBOARD_PORT)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="openrag-tui",
        description="Control panel for OpenRAG on Ray. Without a subcommand, opens the panel.",
    )
    parser.add_argument("--version", action="version", version=f"openrag-tui {__version__}")
    parser.add_argument(
        "--read-only", action="store_true", help="open the panel without any action that changes"
    )
    _common_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    status = commands.add_parser("status", help="GPU allocation per node, pools, pending actors")
    _common_options(status, top=False)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--watch", type=_positive_float, metavar="SECONDS", help="repeat every SECONDS"
    )

    env = commands.add_parser("env", help="show, check or edit the shared .env")
    env_commands = env.add_subparsers(dest="env_command", metavar="ACTION", parser_class=_Parser)
    env_commands.required = True
    show = env_commands.add_parser("show", help="settings with their values (secrets masked)")
    _common_options(show, top=False)
    show.add_argument("--json", action="store_true", help="print one JSON object")
    check = env_commands.add_parser("check", help="validate: exit 1 on errors, 0 on warnings only")
    _common_options(check, top=False)
    check.add_argument("--json", action="store_true", help="print the problems as JSON")
    set_ = env_commands.add_parser("set", help="set KEY=VALUE pairs, validated, atomically")
    _common_options(set_, top=False)
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        if args.command is None:
            return _run_panel(args)
        if args.command == "status":
            from openrag_tui.cli_status import run_status

            return run_status(args, console, errors)
        if args.command == "env":
            return _run_env(args, console)
    except UsageError as error:
        errors.print(f"openrag-tui: {error}", markup=False)
        return EXIT_USAGE
    except EnvFileError as error:
        errors.print(f"openrag-tui: {error}", markup=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")


def _run_panel(args: argparse.Namespace) -> int:
    from openrag_tui.logfile import send_logs_to_file
    from openrag_tui.ui.app import make_app
    from openrag_tui.workspace import open_workspace

    send_logs_to_file()
    app = make_app(open_workspace(args.env, args.dashboard), read_only=args.read_only)
    app.run()
    return app.return_code or EXIT_OK


# ---------------------------------------------------------------- env


def _run_env(args: argparse.Namespace, console: Console) -> int:
    from openrag_tui.workspace import open_workspace

    workspace = open_workspace(args.env, args.dashboard)
    if args.env_command == "set":
        return _env_set(workspace, args.assignments, console)
    if args.env_command == "show":
        return _env_show(workspace, args.json, console)
    return _env_check(workspace, args.json, console)


def _env_set(workspace: Any, assignments: list[str], console: Console) -> int:
    from openrag_tui.config import EnvEditRefused, set_env_values

    updates: dict[str, str] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise UsageError(f"expected KEY=VALUE, got {assignment!r}")
        updates[key] = value
    try:
        saved = set_env_values(workspace.env, updates)
    except EnvEditRefused as refused:
        problems = "; ".join(_problem_text(p) for p in refused.problems) or str(refused)
        raise UsageError(f"{workspace.location.path} left unchanged: {problems}") from None
    console.print(f"updated {', '.join(updates)} in {saved.path}", markup=False)
    return EXIT_OK


def _problem_text(problem: Any) -> str:
    where = f" (line {problem.line})" if problem.line else ""
    return f"{problem.variable}{where}: {problem.message}"


def _env_check(workspace: Any, as_json: bool, console: Console) -> int:
    problems = workspace.settings.problems
    if as_json:
        console.print_json(json.dumps([_problem_dict(p) for p in problems]))
    else:
        console.print(_source_line(workspace), markup=False)
        for problem in problems:
            style = "red" if problem.severity == Severity.ERROR else "yellow"
            console.print(f"[{style}]{problem.severity.value}[/] {_problem_text(problem)}")
        if not problems:
            console.print("no problems")
    return EXIT_FAILED if workspace.settings.errors else EXIT_OK


def _problem_dict(problem: Any) -> dict[str, Any]:
    return {
        "variable": problem.variable,
        "line": problem.line,
        "severity": problem.severity.value,
        "message": problem.message,
    }


def _source_line(workspace: Any) -> str:
    location = workspace.location
    missing = "" if location.exists else " (missing: OpenRAG's defaults apply)"
    return f"{location.path} (from {location.source}){missing}"


def _env_show(workspace: Any, as_json: bool, console: Console) -> int:
    from openrag_tui.cli_env import env_rows, env_table

    rows = env_rows(workspace)
    if as_json:
        payload = {
            "path": str(workspace.location.path),
            "source": workspace.location.source,
            "exists": workspace.location.exists,
            "values": {row["key"]: row["value"] for row in rows},
            "settings": rows,
            "problems": [_problem_dict(p) for p in workspace.settings.problems],
        }
        console.print_json(json.dumps(payload))
        return EXIT_OK
    console.print(_source_line(workspace), markup=False)
    console.print(env_table(rows))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
