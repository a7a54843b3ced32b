"""The machine side of start and stop: find `ray`, run it as a stoppable stream, list Ray.

A Ray command runs in its own session (so the panel's Ctrl-C never reaches the daemons a
`ray start` leaves behind, and a cancel can end the whole group at once), its merged output is
read by a thread into a queue, and the caller takes clean lines with a deadline and a cancel flag.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from openrag_tui.cluster.raylog import clean_line

#: seconds a terminated process group gets before SIGKILL
TERMINATE_GRACE_S = 5.0
#: seconds to keep reading after the process exited (a grandchild may hold the pipe open)
_DRAIN_AFTER_EXIT_S = 0.5
_POLL_S = 0.1
_EOF = object()
_SESSION = re.compile(r"session_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d+_\d+")


def find_ray(executable: str | None = None, path: str | None = None) -> str | None:
    """`ray` beside the running Python (its venv), else on PATH; None when there is none."""
    beside = Path(executable or sys.executable).parent / "ray"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ray", path=path)


def port_in_use(port: int) -> bool:
    """Whether something listens on `port` on any interface (TIME_WAIT leftovers do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return True
    return False


class StreamTimeout(Exception):
    """The command ran past its deadline and was terminated."""


class StreamCancelled(Exception):
    """The command was cancelled and terminated."""


class ProcessStream:
    """One command in its own process group, read as clean lines."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.argv = tuple(argv)
        self._lines: queue.Queue[str | object] = queue.Queue()
        self._process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        threading.Thread(target=self._read, name=f"read {self.argv[0]}", daemon=True).start()

    @property
    def returncode(self) -> int | None:
        return self._process.poll()

    def lines(self, deadline: float, cancelled: threading.Event) -> Iterator[str]:
        """Lines as they arrive until the process exits; past `deadline` (monotonic) or once
        `cancelled` is set, the group is terminated and StreamTimeout/StreamCancelled raised."""
        eof, exited_at = False, None
        while True:
            if cancelled.is_set():
                self.terminate()
                raise StreamCancelled
            if time.monotonic() > deadline:
                self.terminate()
                raise StreamTimeout
            try:
                item = self._lines.get(timeout=_POLL_S)
            except queue.Empty:
                item = None
            if isinstance(item, str):
                yield item
                continue
            eof = eof or item is _EOF
            if self._process.poll() is None:
                continue
            exited_at = exited_at or time.monotonic()
            if eof or time.monotonic() - exited_at > _DRAIN_AFTER_EXIT_S:
                return

    def terminate(self) -> None:
        """SIGTERM to the whole group (the daemons a `ray start` spawned, the ssh of a `ray up`),
        SIGKILL when the command outlives the grace period."""
        for sig, grace in ((signal.SIGTERM, TERMINATE_GRACE_S), (signal.SIGKILL, 2.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=grace)
                return

    def _read(self) -> None:
        assert self._process.stdout is not None
        with self._process.stdout:
            for raw in self._process.stdout:
                self._lines.put(clean_line(raw))
        self._lines.put(_EOF)


@dataclass(frozen=True)
class RayProcess:
    """A Ray process on this machine, as a stop confirmation shows it."""

    pid: int
    name: str
    command: str
    session: str | None = None  # the Ray session it belongs to, when its command line says

    def __str__(self) -> str:
        return f"{self.pid:>7}  {self.name:<16.16} {self.command}"


def processes_summary(processes: Sequence[RayProcess]) -> str:
    """`ray stop` ends all N …: the count of each kind and the sessions, in a few lines."""
    kinds = Counter(process.name or "?" for process in processes)
    listed = ", ".join(f"{count} {name}" for name, count in kinds.most_common())
    sessions = sorted({process.session for process in processes if process.session})
    text = f"`ray stop` ends all {len(processes)} Ray processes on this machine: {listed}"
    if sessions:
        plural = "s" if len(sessions) > 1 else ""
        text += f"; {len(sessions)} Ray session{plural}: {', '.join(sessions)}"
    return text + "."


def ray_processes() -> list[RayProcess]:
    """What `ray stop` would end on this machine, matched the way `ray stop` matches them."""
    from ray.autoscaler._private.constants import RAY_PROCESSES

    found = []
    for process in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        info = process.info
        if info["pid"] == os.getpid() or info["status"] == psutil.STATUS_ZOMBIE:  # zombies: gone
            continue
        name, args = info["name"] or "", info["cmdline"] or []
        if _is_ray(name, args, RAY_PROCESSES):
            session = _SESSION.search(" ".join(args))
            found.append(
                RayProcess(info["pid"], name, summarize_command(args), session and session.group())
            )
    return found


def _is_ray(name: str, args: Sequence[str], patterns: Sequence[Sequence[object]]) -> bool:
    command = subprocess.list2cmdline(args)
    return any(str(keyword) in (name if by_name else command) for keyword, by_name in patterns)


def summarize_command(args: Sequence[str], width: int = 42) -> str:
    """A command line that fits a row of 80 columns: absolute paths shortened to their last
    part, runs of blanks (setproctitle pads with them) collapsed, then cut."""
    parts = [Path(arg).name if arg.startswith("/") else arg for arg in args]
    text = " ".join(" ".join(parts).split())
    return text if len(text) <= width else text[: width - 1] + "…"
