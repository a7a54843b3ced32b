"""Run `openrag-tui` as a script would: a child process, no terminal, output captured."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_cli(
    *args: str,
    env_file: Path | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`python -m openrag_tui ARGS [--env ENV_FILE]`; with an .env, its log goes beside it."""
    argv = [sys.executable, "-m", "openrag_tui", *args]
    environ = dict(os.environ if env is None else env)
    if env_file is not None:
        argv += ["--env", str(env_file)]
        environ.setdefault("XDG_STATE_HOME", str(env_file.parent))
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
    )
