"""The embedded vector store: a Milvus Lite server (milvus-lite's gRPC server, run by
`cluster/milvus_server.py`) started beside a local head when the .env's Milvus is this machine
and nothing answers there, its data in our state folder, stopped by `down` (only the one we
started).

It runs with one request worker (see `milvus_server`), listens where VDB_HOST says (this
machine's loopback when unset), is judged up when its port accepts connections, and is stopped
with SIGINT: it lets running requests end, then flushes its data. Its output goes to a log
file, never to the terminal.

Its memtable is capped at 4 MiB (its default is 128 MiB): Milvus Lite searches rows still in the
memtable one by one, in Python, and indexes only sealed segments. Measured at 10,000 chunks: a
hybrid search took 2.4 s with every row in the default memtable, 38 ms with the cap (see
docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from openrag_tui.config import Settings
from openrag_tui.config.locations import state_dir

READY_SECONDS = 30.0
#: rows beyond this many bytes are sealed into an indexed segment (Milvus Lite's own setting)
MEMTABLE_BYTES = 4 * 1024 * 1024
SERVER_ENV = {
    "PYTHONUNBUFFERED": "1",
    "PYTHON_DOTENV_DISABLED": "1",
    "MILVUS_LITE_MEMTABLE_MEMORY_LIMIT_BYTES": str(MEMTABLE_BYTES),
}
STOP_SECONDS = 60.0  # its close flushes and indexes what the memtable holds: seconds on a busy box
SERVER_MODULE = "openrag_tui.cluster.milvus_server"


@dataclass(frozen=True)
class Embedded:
    """Where our Milvus Lite server lives."""

    host: str
    port: int
    data_dir: Path
    record: Path  # its pid file (ours: `down` stops only what this names)
    log: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def embedded(settings: Settings, base: Path | None = None) -> Embedded | None:
    """Our server for this .env, or None when the vector store is not ours to start (the files
    sink, or VDB_HOST names another machine)."""
    from openrag_tui.cluster.targets import is_this_machine

    if settings.sink != "milvus":
        return None
    if settings.vdb_host and not is_this_machine(settings.vdb_host):
        return None
    folder = (base or state_dir()) / "milvus"
    return Embedded(
        host=settings.vdb_host or "127.0.0.1",
        port=settings.vdb_port,
        data_dir=folder / "data",
        record=folder / "server.json",
        log=folder / "server.log",
    )


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout):
            return True
    except OSError:
        return False


def milvus_lite_installed() -> bool:
    return importlib.util.find_spec("milvus_lite") is not None


def start(server: Embedded, say: Callable[[str], None]) -> str:
    """Start it unless something answers at its address; one sentence of what happened.
    Raises RuntimeError with the reason when it cannot start."""
    if answers(server.host, server.port):
        return f"A vector store already answers at {server.address}: nothing to start."
    if not milvus_lite_installed():
        raise RuntimeError("milvus-lite is not installed here: pip install milvus-lite")
    server.data_dir.mkdir(parents=True, exist_ok=True)
    say(f"Starting Milvus Lite at {server.address} (data in {server.data_dir})")
    argv = [sys.executable, "-m", SERVER_MODULE, "--data-dir", str(server.data_dir),
            "--host", server.host, "--port", str(server.port)]  # fmt: skip
    with open(server.log, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the panel's Ctrl-C and a `ray stop` leave it alone
            env={**os.environ, **SERVER_ENV},
        )
    server.record.write_text(
        json.dumps({"pid": process.pid, "port": server.port, "data_dir": str(server.data_dir)})
    )
    deadline = time.monotonic() + READY_SECONDS
    while not answers(server.host, server.port):
        if process.poll() is not None:
            server.record.unlink(missing_ok=True)
            raise RuntimeError(
                f"Milvus Lite exited with code {process.returncode}: see {server.log}"
            )
        if time.monotonic() > deadline:
            _end(process.pid)
            server.record.unlink(missing_ok=True)
            raise RuntimeError(f"Milvus Lite did not answer within {READY_SECONDS:.0f} s")
        time.sleep(0.1)
    return f"Milvus Lite answers at {server.address}."


def ours(server: Embedded) -> psutil.Process | None:
    """The process our record names, if it still runs and is our Milvus Lite."""
    try:
        record = json.loads(server.record.read_text())
        process = psutil.Process(int(record["pid"]))
        command = " ".join(process.cmdline())
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None
    if (SERVER_MODULE in command or "milvus-lite" in command) and str(server.data_dir) in command:
        return process
    return None


def stop(server: Embedded) -> str | None:
    """Stop our server (SIGINT: it flushes its data); None when there was none of ours."""
    process = ours(server)
    server.record.unlink(missing_ok=True)
    if process is None:
        return None
    _end(process.pid)
    return f"Stopped Milvus Lite ({server.address})."


def _end(pid: int) -> None:
    """SIGINT, then SIGKILL after a grace; psutil checks the pid is still the same process."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for sig, grace in ((signal.SIGINT, STOP_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            process.send_signal(sig)
            process.wait(timeout=grace)
            return
        except psutil.TimeoutExpired:
            continue
        except psutil.NoSuchProcess:
            return
