"""The one-command first run: no .env anywhere and no cluster answering means a newcomer's machine,
so start a local head with declared GPUs, deploy the pools, and open the panel on it.

It never fires where OpenRAG is deployed (a shared .env exists there). The demo's own .env lives
in the state folder, so the panel's edits and resizes have a file to go to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from openrag_tui.logfile import state_dir
from openrag_tui.workspace import Workspace, display_path, open_workspace

#: GPUs the demo head declares on a machine without NVIDIA GPUs
DEMO_GPUS = 4
#: the folder of the demo's data volume that holds the sample documents
SAMPLES = "samples"
DEMO_ENV = """\
# openrag-tui's demo cluster: a local Ray head on this machine, started because no shared .env
# and no cluster were found. Stop it with: openrag-tui down --env {path}
OPENRAG_TUI_LOCAL_GPUS={gpus}
RAY_DASHBOARD_PORT=8265
DATA_VOLUME={data}
RAY_POOL_SIZE=2
RAY_NUM_GPUS=0.5
MARKER_POOL_SIZE=1
MARKER_NUM_GPUS=1
"""


def demo_env_path() -> Path:
    return state_dir() / "demo" / ".env"


def wanted(workspace: Workspace, env_given: bool, dashboard_given: bool) -> bool:
    """Only where no shared .env exists: the demo runs already, or no cluster answers."""
    if env_given or dashboard_given or workspace.location.exists:
        return False
    return demo_env_path().exists() or not _answers(workspace.dashboard_url)


def start(say: Callable[[str], None]) -> Workspace:
    """Start (or find) the demo head and its pools; returns the workspace on the demo's .env.

    Raises LifecycleError with one sentence when the head cannot be started.
    """
    from openrag_tui.cluster.lifecycle import start_run  # here: the panel's start skips them
    from openrag_tui.cluster.targets import LifecycleError, local_head

    path = demo_env_path()
    if not path.exists():
        _write_demo_env(path)
    workspace = open_workspace(str(path))
    if _answers(workspace.dashboard_url):
        return workspace
    say(f"No shared .env and no cluster found: starting a demo Ray head ({display_path(path)}).")
    client = workspace.client()
    try:
        run = start_run(local_head(workspace.settings), workspace.settings, path, client)
        for line in run:
            say(f"  {line}")
    finally:
        client.close()
    if run.result is None or not run.result.ok:
        raise LifecycleError(run.result.message if run.result else "the demo head did not start")
    say("Deploying the indexer and marker pools…")
    deployed = _openrag("pools", "deploy", "--env", str(path))
    if deployed.returncode != 0:
        say(f"  the pools were not deployed: {deployed.stderr.strip() or deployed.stdout.strip()}")
    return workspace


def farewell(workspace: Workspace) -> str:
    """What the operator reads after quitting: the demo head is still running."""
    path = display_path(workspace.location.path)
    return f"The demo Ray head is still running. Stop it with: openrag-tui down --env {path}"


def is_demo(workspace: Workspace) -> bool:
    return workspace.location.path == demo_env_path()


def _write_demo_env(path: Path) -> None:
    data = path.parent / "data"
    data.mkdir(parents=True, exist_ok=True)
    copy_samples(data / SAMPLES)
    gpus = 0 if Path("/dev/nvidia0").exists() else DEMO_GPUS
    text = DEMO_ENV.format(path=display_path(path), gpus=gpus, data=data)
    if gpus == 0:  # real GPUs: let Ray detect them
        text = text.replace("OPENRAG_TUI_LOCAL_GPUS=0\n", "")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def copy_samples(folder: Path) -> None:
    """A few documents to index (a 3-page PDF, Markdown, HTML, text), shipped in the package:
    a newcomer's first batch needs something to read."""
    folder.mkdir(parents=True, exist_ok=True)
    for sample in resources.files("openrag_tui").joinpath("samples").iterdir():
        if sample.is_file() and not (folder / sample.name).exists():
            (folder / sample.name).write_bytes(sample.read_bytes())


def _answers(url: str) -> bool:
    from openrag_tui.cluster.dashboard import DashboardClient

    client = DashboardClient(url, timeout=1.0)
    try:
        return client.healthy()
    finally:
        client.close()


def _openrag(*args: str) -> subprocess.CompletedProcess[str]:
    """Our own CLI in a child process, so Ray's driver never lives in the panel's process."""
    return subprocess.run(
        [sys.executable, "-m", "openrag_tui", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
