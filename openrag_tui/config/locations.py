"""Every folder the panel keeps things in, by the XDG rules, in one place."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """`$XDG_STATE_HOME/openrag-tui` (default `~/.local/state/openrag-tui`): logs, the demo,
    the embedded vector store's data."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "openrag-tui"


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/openrag-tui` (default `~/.cache/openrag-tui`): things made again at will."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "openrag-tui"


def config_dir() -> Path:
    """`$XDG_CONFIG_HOME/openrag-tui` (default `~/.config/openrag-tui`): the keymap."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "openrag-tui"


def log_path() -> Path:
    return state_dir() / "openrag-tui.log"
