"""The autopilot's two files beside the ledger, read without Ray (the CLI, the panel).

`autopilot.json` holds its memory and when it last looked; `autopilot.jsonl` one line per step
or note, with its reason. Both are written by the autopilot actor only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openrag_tui.indexing.paths import Where

TICK_SECONDS = 5.0
#: a look older than this many ticks means the autopilot is not running
STALE_TICKS = 4
LOG_KEEP_LINES = 1000


def state_path(where: Where) -> Path:
    return where.ledger.with_name("autopilot.json")


def log_path(where: Where) -> Path:
    return where.ledger.with_name("autopilot.jsonl")


@dataclass(frozen=True)
class AutopilotStatus:
    """What the files say: whether it is on, when it last looked, per pool its memory and the
    last note, and the latest steps (newest last)."""

    enabled: bool
    looked_at: float | None
    pools: dict[str, dict[str, Any]]
    steps: list[dict[str, Any]]

    def running(self, now: float) -> bool:
        return self.looked_at is not None and now - self.looked_at < STALE_TICKS * TICK_SECONDS


def read_status(where: Where, steps: int = 20) -> AutopilotStatus:
    """The autopilot as its files show it (none yet: off, never looked)."""
    state: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(state_path(where).read_text())
        state = found if isinstance(found, dict) else {}
    lines: list[dict[str, Any]] = []
    with contextlib.suppress(OSError):
        for line in log_path(where).read_text().splitlines()[-steps:] if steps > 0 else ():
            with contextlib.suppress(ValueError):
                step = json.loads(line)
                if isinstance(step, dict):
                    lines.append(step)
    return AutopilotStatus(
        enabled=bool(state.get("enabled")),
        looked_at=state.get("looked_at"),
        pools=state.get("pools") or {},
        steps=lines,
    )


def append_line(path: Path, line: str) -> None:
    """One line at the end, never through a link; the file is cut to its last lines now and
    then so it stays small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
    descriptor = os.open(path, flags, 0o644)
    with os.fdopen(descriptor, "a") as stream:
        stream.write(line + "\n")
    with contextlib.suppress(OSError):
        if path.stat().st_size > 400 * LOG_KEEP_LINES:
            kept = path.read_text().splitlines()[-LOG_KEEP_LINES:]
            write_atomically(path, "\n".join(kept) + "\n")


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
