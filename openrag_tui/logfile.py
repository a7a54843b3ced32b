"""Where the panel's and libraries' logs go: a file in the user's state folder, not the terminal."""

from __future__ import annotations

import logging
from pathlib import Path

from openrag_tui.config.locations import log_path, state_dir

__all__ = ["log_path", "send_logs_to_file", "state_dir"]


def send_logs_to_file() -> Path:
    """Route the root logger (and so Ray's and urllib3's) to the log file only."""
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    return path
