"""The command line: the panel without pixels. Each subcommand calls the core and prints.

Each group of subcommands lives in its own module with a `register(commands)` that adds its
parsers and sets `handler=` on them; a handler takes the parsed arguments and an `Output` and
returns an exit code. This module only parses, dispatches, and turns every error into one line
and its exit code (`common.failure_of`): 0 ok, 1 the command ran and found a failure, 2 bad
input or .env errors (nothing changed), 3 the dashboard or cluster is unreachable.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from openrag_tui import __version__
from openrag_tui.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Output, common_options

#: each subcommand and the module whose register() adds it, in --help order
COMMANDS: dict[str, str] = {
    "status": "openrag_tui.cli.status",
    "env": "openrag_tui.cli.env",
    "up": "openrag_tui.cli.lifecycle",
    "down": "openrag_tui.cli.lifecycle",
    "pools": "openrag_tui.cli.pools",
    "scale": "openrag_tui.cli.pools",
    "plan": "openrag_tui.cli.plan",
    "autopilot": "openrag_tui.cli.autopilot",
    "index": "openrag_tui.cli.index",
    "batches": "openrag_tui.cli.index",
    "search": "openrag_tui.cli.vectors",
    "forget": "openrag_tui.cli.vectors",
    "logs": "openrag_tui.cli.logs",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))
#: the options before a subcommand that take a value (exactly as spelt: no abbreviation)
_VALUE_OPTIONS = ("--env", "--dashboard")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or, given the command line, only of the subcommand it
    names: each module costs its import (a CLI call must start fast)."""
    parser = _Parser(
        prog="openrag-tui",
        description="Control panel for OpenRAG on Ray. Without a subcommand, opens the panel.",
    )
    parser.add_argument("--version", action="version", version=f"openrag-tui {__version__}")
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="change nothing: the panel without its changing actions; changing commands refuse",
    )
    common_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    needed = COMMAND_MODULES if argv is None else _needed_modules(argv)
    for name in needed:
        importlib.import_module(name).register(commands)
    return parser


def _needed_modules(argv: Sequence[str]) -> tuple[str, ...]:
    """The modules whose subcommands the command line needs: none for the panel (only
    `--read-only` and `--env`/`--dashboard` with their values), the one of the subcommand it
    names after those, else all (help, an unknown command's list of choices, an abbreviated
    option)."""
    words = iter(argv)
    for word in words:
        if word == "--read-only" or word.startswith(tuple(f"{o}=" for o in _VALUE_OPTIONS)):
            continue
        if word in _VALUE_OPTIONS:
            next(words, None)
            continue
        named = COMMANDS.get(word)
        return COMMAND_MODULES if named is None else (named,)
    return ()


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    out = Output.for_args(args)
    try:
        if args.command is None:
            return _run_panel(args)
        return args.handler(args, out)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:
        return out.fail(error)


def _run_panel(args: argparse.Namespace) -> int:
    from openrag_tui import embedded
    from openrag_tui.logfile import send_logs_to_file
    from openrag_tui.ui.app import make_app
    from openrag_tui.workspace import open_workspace

    send_logs_to_file()
    workspace = open_workspace(args.env, args.dashboard)
    if not args.read_only and embedded.wanted(workspace, bool(args.env), bool(args.dashboard)):
        from openrag_tui.cluster.targets import LifecycleError  # the demo's start only

        try:
            workspace = embedded.start(print)
        except LifecycleError as error:
            print(f"openrag-tui: the demo cluster did not start: {error}", file=sys.stderr)
    app = make_app(workspace, read_only=args.read_only)
    app.run()
    if embedded.is_demo(workspace):
        print(embedded.farewell(workspace))
    return app.return_code or EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
