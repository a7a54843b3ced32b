"""`openrag-tui env show`: every known setting and every other key, secrets masked."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from openrag_tui.config import FIELDS, mask_value
from openrag_tui.workspace import Workspace


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
