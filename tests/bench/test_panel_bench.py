"""Benchmarks of the panel (run on demand; they print, they do not time-gate).

    .venv/bin/python -m pytest tests/bench/test_panel_bench.py -m bench -s

1. The main screen's update for a 1,000-node × 20-actor view: from the view handed to the
   screen (as a poll's result) until a frame with its tables sized is drawn, against the same
   update for 10 nodes and a cold frame of the screen, interleaved in one run.
2. The panel as a process in a pty, on the live two-node test cluster: time to its first
   frame and to its first figures, then CPU and RSS over 30 s idle at a 2 s refresh, against
   `import textual.app` and an empty Textual app in the same pty.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from textual._compositor import CompositorUpdate
from textual.widgets import DataTable

from openrag_tui.cluster.allocation import ClusterView, build_view
from openrag_tui.cluster.state import parse
from openrag_tui.ui.app import OpenRagApp, make_app
from openrag_tui.ui.messages import ViewRead
from openrag_tui.ui.screens.main import MainScreen
from openrag_tui.workspace import open_workspace
from tests.support.raycluster import TestCluster, free_port
from tests.support.recorded import recorded_factory
from tests.support.synthetic import GENERATED_POOLS, generate_payloads, rows

pytestmark = pytest.mark.bench
DATA = Path(__file__).resolve().parents[1] / "data"
SIZE = (100, 30)
RUNS = 9
NOW = 1_795_771_210.0


def _view(payloads: dict[str, Any], fetched_at: float = NOW) -> ClusterView:
    return build_view(parse(payloads, fetched_at=fetched_at), GENERATED_POOLS, now=fetched_at,
                      stale_after=6.0)  # fmt: skip


def _views(nodes: int) -> dict[str, ClusterView]:
    """`base`; `figures`: every node's reserved, free and GPU use changed, nothing else (the
    common refresh); `all`: one actor fewer per node, so the pools and warnings change too."""
    payloads = generate_payloads(nodes, 20)
    base = _view(payloads)
    for row in rows(payloads, "actors_detail"):
        if (
            row["class_name"] == "Worker"
            and row["state"] == "ALIVE"
            and row["required_resources"].get("GPU")
        ):
            row["required_resources"]["GPU"] = 0.05
    for node in payloads["nodes_summary"]["data"]["summary"]:
        for gpu in node["gpus"]:
            gpu["utilizationGpu"] = (gpu["utilizationGpu"] + 50) % 100
    figures = _view(payloads)
    assert figures.warnings == base.warnings and figures.pending == base.pending
    return {"base": base, "figures": figures, "all": _view(generate_payloads(nodes, 19))}


class FrameClock:
    """Times the frames the app draws: the headless driver skips writing them, so this also
    turns each into the bytes a terminal would get (what the real driver does next)."""

    def __init__(self, app: OpenRagApp) -> None:
        self.app = app
        #: when each frame whose tables were all sized was drawn: (wall, the UI thread's CPU)
        self.drawn: list[tuple[float, float]] = []
        self.shown: list[tuple[float, float]] = []  # when the main screen had shown each view
        display = app._display

        def timed(screen, renderable) -> None:
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)
                if not self._tables_pending():
                    self.drawn.append((time.perf_counter(), time.thread_time()))
            display(screen, renderable)

        app._display = timed

    def _nothing_to_draw(self) -> bool:
        """No widget waits to be drawn or laid out, the screen neither (Textual's flags)."""
        screen = self.app.screen
        widgets = [screen, *screen.walk_children()]
        return not (
            screen._dirty_widgets
            or screen._scroll_required
            or any(w._repaint_required or w._layout_required for w in widgets)
            or self._tables_pending()
        )

    def _tables_pending(self) -> bool:
        return any(
            table._require_update_dimensions or table._updated_cells
            for table in self.app.screen.query(DataTable)
        )

    def watch(self, screen: MainScreen) -> None:
        """Note when the screen has shown each view: a frame drawn before (the status line's
        every-second one, say) does not show it."""
        show = screen._show_view

        def shown(view: ClusterView) -> None:
            show(view)
            self.shown.append((time.perf_counter(), time.thread_time()))

        screen._show_view = shown

    async def next_frame(
        self, since: tuple[float, float], timeout: float = 30.0, view: bool = True
    ) -> tuple[float, float]:
        """Wall and UI-thread CPU seconds from `since` to the first frame with every table
        sized drawn after it (and after the screen showed a view handed in after `since`);
        a view that changes nothing on screen draws no frame: then until it was shown."""
        deadline = time.perf_counter() + timeout
        while True:
            after = [at for at in self.shown if at[0] > since[0]] if view else [since]
            done = [(wall, cpu) for wall, cpu in self.drawn if after and wall > after[0][0]]
            if done:
                return done[0][0] - since[0], done[0][1] - since[1]
            if after and view and self._nothing_to_draw():
                return after[0][0] - since[0], after[0][1] - since[1]
            if time.perf_counter() > deadline:
                raise TimeoutError("no frame drawn")
            await asyncio.sleep(0.001)


async def _paused(app: OpenRagApp) -> MainScreen:
    """The main screen once its first poll is shown, then paused: the recorded cluster must
    not replace the views handed in."""
    screen = app.screen
    assert isinstance(screen, MainScreen)
    while screen.view is None:
        await asyncio.sleep(0.01)
    screen.action_toggle_pause()
    await asyncio.sleep(0.2)
    return screen


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


async def _hand(app: OpenRagApp, clock: FrameClock, view: ClusterView) -> tuple[float, float]:
    """Wall and CPU seconds from the view posted to the screen (as a poll's result) to the
    frame drawn."""
    app.backend.took_view(view)  # what the poll's thread does with a view
    await asyncio.sleep(0.05)  # the last frame is out
    start = _now()
    app.screen.post_message(ViewRead(view, None))
    return await clock.next_frame(start)


async def _cold_frame(app: OpenRagApp, clock: FrameClock) -> tuple[float, float]:
    """One frame of the whole screen with every visible cell drawn again, as after a change
    (DataTable's caches are keyed by its update count)."""
    await asyncio.sleep(0.05)
    start = _now()
    for table in app.screen.query(DataTable):
        table._update_count += 1
        table.refresh()
    app.screen.refresh()
    return await clock.next_frame(start, view=False)


def _app(tmp_path: Path) -> OpenRagApp:
    env = tmp_path / ".env"
    shutil.copyfile(DATA / "scenario.env", env)
    return make_app(
        open_workspace(str(env)),
        client_factory=recorded_factory(),
        clock=lambda: NOW,
        keymap_file=tmp_path / "keymap.toml",
        env_watch_seconds=None,
    )


def _median_ms(values: list[tuple[float, float]], which: int = 0) -> float:
    return statistics.median(value[which] for value in values) * 1000


def _ms(values: list[tuple[float, float]]) -> str:
    walls = [wall * 1000 for wall, _ in values]
    return (
        f"{_median_ms(values):6.1f} ms (min {min(walls):5.1f}, max {max(walls):6.1f}), "
        f"UI thread CPU {_median_ms(values, 1):6.1f} ms, n={len(values)}"
    )


async def test_tables_update_for_1000_nodes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    views = {nodes: _views(nodes) for nodes in (10, 1000)}
    app = _app(tmp_path)
    times: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, seconds: tuple[float, float]) -> None:
        times.setdefault(name, []).append(seconds)

    async with app.run_test(size=SIZE):
        clock = FrameClock(app)
        clock.watch(await _paused(app))
        for _ in range(RUNS):  # interleaved: the box's noise hits every figure alike
            for nodes in (10, 1000):
                base, figures, changed = (views[nodes][k] for k in ("base", "figures", "all"))
                add(f"{nodes} new rows", await _hand(app, clock, base))  # from the other size
                add(f"{nodes} same", await _hand(app, clock, base))
                add(f"{nodes} figures", await _hand(app, clock, figures))
                add(f"{nodes} figures", await _hand(app, clock, base))
                add(f"{nodes} all", await _hand(app, clock, changed))
                add(f"{nodes} all", await _hand(app, clock, base))
                add(f"cold frame {nodes}", await _cold_frame(app, clock))
    print(f"\npanel {SIZE[0]}x{SIZE[1]}: view handed to the main screen -> frame drawn (median)")
    for name in sorted(times):
        print(f"  {name:<16} {_ms(times[name])}")
    frame = _median_ms(times["cold frame 1000"])
    for kind in ("same", "figures", "all", "new rows"):
        big, small = (_median_ms(times[f"{n} {kind}"]) for n in (1000, 10))
        print(f"  1000 {kind:<8}: x{big / small:4.1f} the 10-node update, "
              f"x{big / frame:4.1f} a cold frame")  # fmt: skip


# ---------------------------------------------------------------- 2. the panel as a process

IDLE_SECONDS = 30.0
SETTLE_SECONDS = 20.0
STARTS = 5
EMPTY_APP = """
from textual.app import App
from textual.widgets import Static
class Empty(App):
    def compose(self):
        yield Static("empty-app-frame")
Empty().run()
"""


class PtyProcess:
    """A program in a pseudo-terminal of a fixed size, its output read as it comes (with the
    time each chunk arrived): what an SSH session or tmux gives the panel."""

    def __init__(self, argv: list[str], env: dict[str, str], size: tuple[int, int] = SIZE):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self._master = master
        self._cpu = psutil.Process(self.process.pid)
        #: (seconds since the start, the program's CPU seconds so far, bytes) as they came
        self._chunks: list[tuple[float, float, bytes]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not data:
                return
            at = time.perf_counter() - self.started
            try:
                cpu = sum(self._cpu.cpu_times()[:2])
            except psutil.Error:
                cpu = float("nan")
            with self._lock:
                self._chunks.append((at, cpu, data))

    def seen(self, text: str, timeout: float = 60.0) -> tuple[float, float]:
        """Seconds from the start until `text` was on the screen (escape sequences left out:
        Textual writes each frame whole, so this is when the frame showing it arrived), and
        the CPU seconds the program had used by then (what other processes on the box do not
        change much)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                chunks = list(self._chunks)
            screen = b""
            for at, cpu, data in chunks:
                screen += data
                if text in _ANSI.sub("", screen.decode(errors="replace")):
                    return at, cpu
            time.sleep(0.005)
        raise TimeoutError(f"{text!r} never showed")

    def stop(self) -> None:
        """Quit as an operator does (`q`, Textual's own ctrl+q), else end our child by its pid."""
        for key in (b"q", b"\x11"):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                os.write(self._master, key)
                self.process.wait(timeout=3)
                break
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        os.close(self._master)


#: CSI, OSC and DCS sequences, charset and keypad switches: what is not text on the screen
_ANSI = re.compile(
    r"\x1b(\[[0-9;?<>=$]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\"
    r"|[()][0-9A-Za-z]|[=>78])"
)


def _usage(pid: int, seconds: float) -> tuple[float, float, float]:
    """CPU % (of one core) over `seconds`, with its children, and the peak and last RSS (MB)."""
    process = psutil.Process(pid)

    def cpu() -> float:
        total = sum(process.cpu_times()[:2])
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += sum(child.cpu_times()[:2])
        return total

    start, begun, peak = cpu(), time.monotonic(), 0.0
    while time.monotonic() - begun < seconds:
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.5)
    used, rss = cpu() - start, process.memory_info().rss
    return 100 * used / (time.monotonic() - begun), max(peak, rss) / 2**20, rss / 2**20


def _child_env(home: Path) -> dict[str, str]:
    """A terminal's environment; bytecode cached (in `home`) as an installed wheel has it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TEXTUAL"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(HOME=str(home), TERM="xterm-256color", COLORTERM="truecolor", LANG="C.UTF-8",
               PYTHONPYCACHEPREFIX=str(home / "pycache"))  # fmt: skip
    return env


def _start_up(argv: list[str], env: dict[str, str], *texts: str) -> list[tuple[float, float]]:
    """(seconds, CPU seconds) from the start until each of `texts` showed, then quit."""
    program = PtyProcess(argv, env)
    try:
        return [program.seen(text) for text in texts]
    finally:
        program.stop()


def _import_time(env: dict[str, str]) -> tuple[float, float]:
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-c", "import textual.app"], check=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return time.perf_counter() - start, cpu


def test_panel_idle_and_first_frame(ray_cluster: TestCluster, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "RAY_POOL_SIZE=2\nOPENRAG_TUI_REFRESH_SECONDS=2\n"
        f"DATA_VOLUME={tmp_path / 'data'}\nVDB_PORT={free_port()}\n"  # no Milvus answers
    )
    (tmp_path / "data").mkdir()
    env = _child_env(tmp_path)
    panel = [str(Path(sys.executable).parent / "openrag-tui"), "--env", str(env_file),
             "--dashboard", ray_cluster.dashboard_url]  # fmt: skip
    empty = [sys.executable, "-c", EMPTY_APP]
    url = ray_cluster.dashboard_url.removeprefix("http://")
    _start_up(panel, env, "2/2 nodes")  # bytecode compiled, as a wheel's install does
    _start_up(empty, env, "empty-app-frame")
    results: dict[str, list[tuple[float, float]]] = {}
    for _ in range(STARTS):  # interleaved with the baselines
        results.setdefault("import textual.app", []).append(_import_time(env))
        (frame,) = _start_up(empty, env, "empty-app-frame")
        results.setdefault("empty app: first frame", []).append(frame)
        frame, figures = _start_up(panel, env, url, "2/2 nodes")
        results.setdefault("panel: first frame", []).append(frame)
        results.setdefault("panel: first figures", []).append(figures)
    print(f"\nstart-up in a {SIZE[0]}x{SIZE[1]} pty, from the process's start "
          f"(median of {STARTS}; its CPU seconds by then in brackets)")  # fmt: skip
    for name, values in results.items():
        wall, cpu = (statistics.median(value[i] for value in values) for i in (0, 1))
        runs = ", ".join(f"{value[0]:.2f}" for value in values)
        print(f"  {name:<24} {wall:6.3f} s  [{cpu:5.3f} s]  ({runs})")
    ratio = (statistics.median(v[i] for v in results["panel: first frame"])
             / statistics.median(v[i] for v in results["empty app: first frame"])
             for i in (0, 1))  # fmt: skip
    print("  panel / empty app, first frame: x{:.2f} wall, x{:.2f} CPU".format(*ratio))
    usages = {}
    for name, argv, text in (("empty Textual app", empty, "empty-app-frame"),
                             ("panel", panel, "2/2 nodes")):  # fmt: skip
        program = PtyProcess(argv, env)
        try:
            program.seen(text)
            time.sleep(SETTLE_SECONDS)  # the history's first minutes, the first looks
            usages[name] = _usage(program.process.pid, IDLE_SECONDS)
        finally:
            program.stop()
    print(f"idle over {IDLE_SECONDS:.0f} s after {SETTLE_SECONDS:.0f} s, at a 2 s refresh "
          "(CPU % of one core, RSS peak/last):")  # fmt: skip
    for name, (cpu, peak, last) in usages.items():
        print(f"  {name:<18} CPU {cpu:5.2f} %   RSS {peak:6.1f} / {last:6.1f} MB")
