"""What every CLI subcommand shares: exit codes, the usage error, options, problem formatting."""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input: one clear line, exit 2, nothing changed."""


def common_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--env and --dashboard, accepted both before and after the subcommand."""
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


def positive_float(text: str) -> float:
    """An argparse type: a number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


def problem_text(problem: Any) -> str:
    """`VARIABLE (line N): sentence` for a config Problem."""
    where = f" (line {problem.line})" if problem.line else ""
    return f"{problem.variable}{where}: {problem.message}"


def problem_dict(problem: Any) -> dict[str, Any]:
    return {
        "variable": problem.variable,
        "line": problem.line,
        "severity": problem.severity.value,
        "message": problem.message,
    }
