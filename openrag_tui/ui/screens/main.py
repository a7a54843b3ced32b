"""The main screen: nodes and pools, refreshed by one self-rescheduling poll.

The next poll is armed only when the last one finished, so polls never overlap; a failed poll
backs off; a view that arrives while a modal is open waits until the screen is back on top.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static

from openrag_tui.formats import plain
from openrag_tui.render import (
    bar_legend_parts,
    openrag_line,
    pending_lines,
    vector_store_line,
    warning_lines,
)
from openrag_tui.ui.backend import Backend, child_events
from openrag_tui.ui.keys import key
from openrag_tui.ui.messages import ClusterChanged, EnvReloaded, ReadFailed, ViewRead
from openrag_tui.ui.screens.base import PanelScreen
from openrag_tui.ui.widgets.cluster_tables import SORTS, NodesTable, PoolsTable
from openrag_tui.ui.widgets.fitted import FittedLine, Part
from openrag_tui.ui.widgets.footer import PanelFooter
from openrag_tui.ui.widgets.status_bar import Freshness, StatusBar
from openrag_tui.ui.widgets.textbox import TextBox
from openrag_tui.ui.workers import OneAtATime

MAX_BACKOFF_SECONDS = 30.0
OUTCOME_WORDS = {"reached": "reached", "unsettled": "not reached yet"}
#: how long a resize may take before the panel stops waiting for it (seconds)
RESIZE_TIMEOUT_SECONDS = 180.0
#: the vector store and OpenRAG's queue are looked at this often (each a request or two)
VECTOR_STORE_SECONDS = 5.0
#: what the interval key cycles through (seconds)
INTERVALS = (1.0, 2.0, 5.0, 10.0, 30.0)


ENV_PROBLEMS_SHOWN = 4


if TYPE_CHECKING:  # the cluster's modules load in the first poll's thread
    from openrag_tui.cluster.allocation import ClusterView, PoolStatus
    from openrag_tui.cluster.processes import ProcessStream
    from openrag_tui.config import Settings
    from openrag_tui.indexing.autopilot_log import AutopilotStatus
    from openrag_tui.indexing.openrag.queue import OpenRagQueue


def autopilot_line(status: AutopilotStatus, settings: Settings, now: float | None = None) -> Text:
    """On or off, running or not, and its last step; empty when it was never used."""
    on = settings.autopilot == "on"
    if not on and status.looked_at is None:
        return Text()
    line = Text("autopilot ", style="bold")
    if not on:
        return line.append("off", style="dim").append("  (a: turn on)", style="dim")
    line.append("on", style="green")
    if not status.running(time.time() if now is None else now):
        return line.append(
            ", not running: `openrag-tui autopilot on` starts it (a: off)", style="yellow"
        )
    held = [pool for pool, memory in status.pools.items() if memory.get("hold") is not None]
    if held:
        line.append(f" · {', '.join(held)} held after a hand resize", style="cyan")
    if status.steps:
        step = status.steps[-1]
        moved = "" if step.get("to") is None else f" {step.get('from')} → {step.get('to')}"
        line.append(f" · {step.get('pool')}{moved}: {step.get('reason')}", style="dim")
    return line


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def counts_text(counts: dict) -> str:
    """`2 alive, 1 pending, 0 retiring (target 3)` from a `scale --jsonl` event's counts."""
    return (
        f"{counts.get('alive', '?')} alive, {counts.get('pending', '?')} pending, "
        f"{counts.get('retiring', '?')} retiring (target {counts.get('target', '?')})"
    )


NO_FIGURES = "No cluster figures yet: the dashboard has not answered."


def backoff_seconds(interval: float, failures: int) -> float:
    """Retry delay after `failures` failed polls in a row: doubling, capped."""
    return min(interval * 2 ** max(failures - 1, 0), MAX_BACKOFF_SECONDS)


def next_interval(current: float) -> float:
    """The next step of the interval cycle (from a custom setting: the next larger step)."""
    larger = [step for step in INTERVALS if step > current]
    return larger[0] if larger else INTERVALS[0]


class MainScreen(PanelScreen):
    """Nodes, pools, pending actors and warnings, kept fresh."""

    BINDINGS: ClassVar[list[BindingType]] = [
        key("refresh", "r", "refresh_now", "Refresh"),
        key("pause", "p", "toggle_pause", "Pause", show=False),
        # sort and interval are named with their keys in the legend line, not in the footer
        key("interval", "i", "cycle_interval", "Interval", show=False),
        key("filter", "slash", "filter", "Filter", show=False),
        key("sort", "o", "cycle_sort", "Sort", show=False),
        key("env", "e", "app.open_env_editor", ".env"),
        key("batches", "b", "app.open_batches", "Batches"),
        key("search", "f", "app.open_search", "Search"),
        key("pool-logs", "l", "pool_logs", "Pool logs", show=False),
        key("pool-up", "plus", "resize(1)", "Pool +1 actor", changes=True, group="pool"),
        key("pool-down", "minus", "resize(-1)", "Pool −1 actor", changes=True, group="pool"),
        key("pool-scale", "s", "scale_dialog", "Scale pool to…", changes=True, group="pool"),
        key("pool-plan", "P", "plan_dialog", "Plan pools…", show=False, group="pool"),
        key("autopilot", "a", "toggle_autopilot", "Autopilot", changes=True, show=False),
        key("start", "U", "app.start_cluster", "Start cluster", changes=True, group="cluster"),
        key("stop", "D", "app.stop_cluster", "Stop cluster", changes=True, group="cluster"),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.view: ClusterView | None = None
        self.failures = 0
        self.last_error = ""
        self.paused = False
        self.interval = backend.workspace.settings.refresh_seconds
        self.sort = SORTS[0]
        self.filter_text = ""
        self._filter_matches = True
        self._poll_flight = OneAtATime("poll", release_on_return=False)
        self._vector_flight = OneAtATime("vector-store")
        self._next_poll: Timer | None = None
        self._unshown: ClusterView | None = None
        self._looked_at_services = False
        self.requested: dict[str, int] = {}  # the last size asked of each pool from here
        self._resizes: dict[str, threading.Event] = {}  # set to stop a superseded resize
        self._pool_progress: dict[str, Text] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield TextBox(id="banner")
        yield Input(placeholder="filter nodes (host, ip, state); esc clears", id="filter")
        with VerticalScroll(id="body"):
            yield NodesTable(id="nodes")
            yield FittedLine(id="legend")
            yield PoolsTable(id="pools")
            yield TextBox(id="pool-progress")
            yield TextBox(id="autopilot")
            yield TextBox(id="vector-store")
            yield TextBox(id="openrag-queue")
            yield TextBox(id="pending")
            yield TextBox(id="warnings")
            yield TextBox(id="env-problems")
        yield PanelFooter()

    def on_mount(self) -> None:
        self.query_one("#banner").display = False
        self.query_one("#filter").display = False
        self.query_one("#pool-progress").display = False
        self.query_one("#autopilot").display = False
        self.query_one("#openrag-queue").display = False
        self._show_status()
        self._show_legend()
        self._show_env_problems()
        self.set_interval(1.0, self._show_status)
        self.set_interval(VECTOR_STORE_SECONDS, self._look_at_vector_store)
        self.query_one(NodesTable).focus()
        self._poll()  # the vector store's first look waits for its result (see _arm_next_poll)

    def _look_at_vector_store(self) -> None:
        self._vector_flight.start(self, self._read_vector_store)

    def _read_vector_store(self) -> None:
        status = self.backend.vector_store()
        queue = self.backend.openrag_queue()
        self.backend.sample_indexing()
        self.app.call_from_thread(self._show_services, vector_store_line(status), queue)
        pilot = autopilot_line(self.backend.autopilot_status(), self.backend.workspace.settings)
        self.app.call_from_thread(self._show_autopilot, pilot)

    def _show_autopilot(self, line: Text) -> None:
        shown = self.query_one("#autopilot", Static)
        shown.display = bool(line.plain)
        shown.update(line)

    def _show_services(self, vectors: Text, queue: OpenRagQueue | None) -> None:
        self.query_one("#vector-store", Static).update(vectors)
        shown = self.query_one("#openrag-queue", Static)
        shown.display = queue is not None
        if queue is not None:
            shown.update(openrag_line(queue))

    def on_unmount(self) -> None:
        for stop in self._resizes.values():  # quitting ends the `scale` children, not waits
            stop.set()

    # ------------------------------------------------------------ polling

    def _poll(self) -> None:
        """Read the cluster unless a read is still out (its result re-arms the poll)."""
        self._next_poll = None
        self._poll_flight.start(self, self._read_cluster)

    def _read_cluster(self) -> None:
        from openrag_tui.cluster.dashboard import DashboardError

        try:
            self.post_message(ViewRead(*self.backend.read_view()))
        except DashboardError as error:
            self.post_message(ReadFailed(str(error)))
        except Exception as error:  # a bug must not kill the poll loop: show it and go on
            self.post_message(ReadFailed(f"{type(error).__name__}: {error}"))

    @property
    def _polling(self) -> bool:
        return self._poll_flight.busy

    def _arm_next_poll(self, delay: float) -> None:
        self._poll_flight.release()
        if not self._looked_at_services:  # its modules load once the first figures are drawn
            self._looked_at_services = True
            self.call_after_refresh(self._look_at_vector_store)
        if not self.paused:
            self._next_poll = self.set_timer(delay, self._poll)

    def _restart_polling(self) -> None:
        """Poll now (or as soon as the poll in flight is back), then on the new schedule."""
        if self._next_poll is not None:
            self._next_poll.stop()
            self._next_poll = None
        if not self._polling and not self.paused:
            self._poll()

    def on_view_read(self, message: ViewRead) -> None:
        self.failures = 0
        self.last_error = ""
        self.view = message.view
        if message.died:
            self.notify(message.died, title="Actors died", severity="warning", timeout=15)
        self._show_view(message.view)
        self._arm_next_poll(self.interval)

    def on_read_failed(self, message: ReadFailed) -> None:
        self.failures += 1
        self.last_error = message.error
        self._show_status()
        self._arm_next_poll(backoff_seconds(self.interval, self.failures))

    def on_env_reloaded(self, _message: EnvReloaded) -> None:
        """Pool targets and the dashboard URL come from the .env: show them at once."""
        self._show_env_problems()
        self._restart_polling()

    def on_cluster_changed(self, _message: ClusterChanged) -> None:
        self._restart_polling()

    # ------------------------------------------------------------ drawing

    def on_screen_resume(self) -> None:
        if self._unshown is not None:
            self._show_view(self._unshown)

    def _show_view(self, view: ClusterView) -> None:
        if self.app.screen is not self:  # nothing redraws under a modal
            self._unshown = view
            return
        self._unshown = None
        nodes = self.query_one(NodesTable)
        nodes.show(view, self.filter_text, self.sort, self.backend.history)
        matches = bool(nodes.row_count) or not self.filter_text
        if matches != self._filter_matches:
            self._filter_matches = matches
            self._show_legend()
        self.query_one(PoolsTable).show(view, self.backend.history)
        pending = self.query_one("#pending", Static)
        pending.display = bool(view.pending)
        pending.update(Text("Pending actors\n", style="bold") + pending_lines(view))
        warnings = self.query_one("#warnings", Static)
        warnings.display = bool(view.warnings)
        warnings.update(warning_lines(view))
        self._show_status()

    def _show_legend(self) -> None:
        """The bar's glyphs, then the view's settings; the key hints go first when narrow."""
        parts = [Part(glyph, 3) for glyph in bar_legend_parts()]
        parts += [
            Part(Text("/ filter", style="dim"), 1),
            Part(Text(f"o sort: {self.sort}", style="dim"), 2),
            Part(Text(f"i every {self.interval:g}s", style="dim"), 4),
        ]
        if self.filter_text:
            said = Text.assemble("filter “", plain(self.filter_text), "”", style="bold")
            if not self._filter_matches:
                said.append(": no node matches (esc clears)", style="bold yellow")
            parts.append(Part(said, 5))
        self.query_one("#legend", FittedLine).show(parts)

    def _show_env_problems(self) -> None:
        """Every error in full (wrapped), then the count of warnings: never a cut line."""
        settings = self.backend.workspace.settings
        box = self.query_one("#env-problems", Static)
        box.display = bool(settings.problems)
        if not settings.problems:
            return
        errors, warnings = settings.errors, settings.warnings
        style = "red" if errors else "yellow"
        text = Text.assemble(
            (f".env: {_plural(len(errors), 'error')}, {_plural(len(warnings), 'warning')}",
             f"bold {style}"),
            ("  e: open the editor", "dim"),
        )  # fmt: skip
        for problem in (errors or warnings)[:ENV_PROBLEMS_SHOWN]:
            text.append("\n").append_text(plain(problem.text))
        hidden = len(errors or warnings) - ENV_PROBLEMS_SHOWN
        if hidden > 0:
            text.append(f"\n… and {hidden} more in the editor (e)", style="dim")
        box.update(text)

    def _show_status(self) -> None:
        freshness = Freshness(
            view=self.view,
            now=self.backend.clock(),
            interval=self.interval,
            paused=self.paused,
            failing=self.failures > 0,
            read_only=self.app.read_only,
        )
        self.query_one(StatusBar).show_status(self.backend.dashboard_url, freshness)
        banner = self.query_one("#banner", Static)
        banner.display = self.failures > 0
        if self.failures:
            retry = backoff_seconds(self.interval, self.failures)
            banner.update(
                Text.assemble(
                    ("Dashboard unreachable ", "bold"),
                    plain(self.backend.dashboard_url),
                    "\n",
                    plain(self.last_error),
                    "\n",
                    f"attempt {self.failures} failed; retrying every {retry:g}s "
                    "(the rest of the panel keeps working)",
                )
            )

    # ------------------------------------------------------------ actions

    def action_refresh_now(self) -> None:
        if self._polling:
            return  # one is in flight; its result is as fresh as a new one
        if self.paused:  # one read, and the panel stays paused: say so
            self.notify("Paused: read once now; p resumes the refresh.", timeout=4)
            self._poll()
            return
        self._restart_polling()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused and self._next_poll is not None:
            self._next_poll.stop()
            self._next_poll = None
        elif not self.paused and not self._polling:
            self._poll()
        self._show_status()

    def action_cycle_interval(self) -> None:
        self.interval = next_interval(self.interval)
        self._show_legend()
        self._restart_polling()

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._show_legend()
        if self.view is not None:
            self._show_view(self.view)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip()
            self._show_legend()
            if self.view is not None:
                self._show_view(self.view)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = bool(self.filter_text)
            self.query_one(NodesTable).focus()

    def on_key(self, event) -> None:
        """Escape in the filter box clears the filter and returns to the nodes."""
        box = self.query_one("#filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.value = ""
            box.display = False
            self.query_one(NodesTable).focus()

    # ------------------------------------------------------------ pools

    def _selected_pool(self) -> PoolStatus | None:
        name = self.query_one(PoolsTable).selected_pool
        if self.view is None or name is None:
            self.notify("No pool figures yet: the dashboard has not answered.", severity="warning")
            return None
        return next(pool for pool in self.view.pools if pool.name == name)

    def action_resize(self, delta: int) -> None:
        pool = self._selected_pool()
        if pool is not None:
            current = self.requested.get(pool.name, pool.target)
            self._ask_for_size(pool, max(0, current + delta))

    def action_pool_logs(self) -> None:
        """The log of every alive actor of the pool under the cursor, prefixed by actor."""
        from openrag_tui.ui.screens.logs import LogsScreen

        pool = self.query_one(PoolsTable).selected_pool
        if pool is not None:
            self.app.push_screen(LogsScreen([pool]))

    def action_scale_dialog(self) -> None:
        from openrag_tui.ui.screens.scale_dialog import ScaleScreen

        pool = self._selected_pool()
        if pool is not None:
            self.app.push_screen(ScaleScreen(pool), lambda size: self._ask_for_size(pool, size))

    def action_plan_dialog(self) -> None:
        """The planner on the last view and this panel's measured GPU memory."""
        from openrag_tui.config.pools import POOLS, pool_spec
        from openrag_tui.ui.screens.plan_dialog import PlanScreen

        if self.view is None:
            self.notify(
                "No cluster figures yet: the dashboard has not answered.", severity="warning"
            )
            return
        settings = self.backend.workspace.settings
        specs = {pool: pool_spec(settings, pool) for pool in POOLS}
        screen = PlanScreen(
            self.view.state, specs, self.backend.measured_memory(self.view), self.app.read_only
        )
        self.app.push_screen(screen, self._apply_plan)

    def _apply_plan(self, arguments: list[str] | None) -> None:
        if arguments is not None:
            self._run_child(
                "plan", "plan: applying…", partial(self.backend.plan_process, *arguments)
            )

    def action_toggle_autopilot(self) -> None:
        on = self.backend.workspace.settings.autopilot != "on"
        words = "turning the autopilot on…" if on else "turning the autopilot off…"
        self._run_child("autopilot", words, partial(self.backend.autopilot_process, on))

    def _run_child(self, label: str, starting: str, start: Callable[[], ProcessStream]) -> None:
        """Run one of our commands as a child; its one-line verdict under the pools."""
        self._show_pool_progress(label, Text(starting, style="yellow"))
        self.run_worker(
            partial(self._follow_child, label, start),
            thread=True,
            exit_on_error=False,
            group=f"child-{label}",
        )

    def _follow_child(self, label: str, start: Callable[[], ProcessStream]) -> None:
        from openrag_tui.cluster.processes import StreamTimeout

        stream = start()
        said = ""
        try:
            for event in child_events(stream, RESIZE_TIMEOUT_SECONDS, threading.Event()):
                if event.get("event") == "error":
                    said = str(event.get("message") or "failed")
                elif event.get("event") == "result" and event.get("recommended"):
                    written = (event.get("applied") or {}).get("written") or {}
                    said = ", ".join(f"{k}={v}" for k, v in written.items()) or "no change"
        except StreamTimeout:
            said = f"no answer within {RESIZE_TIMEOUT_SECONDS:.0f} s"
        ok = stream.returncode == 0
        said = said or ("done" if ok else f"ended with exit code {stream.returncode}")
        verdict = Text(f"{label}: {said}", style="green" if ok else "red")
        self.app.call_from_thread(self._show_pool_progress, label, verdict)
        self.app.call_from_thread(self.app.backend_changed_env)
        self.app.call_from_thread(self._look_at_vector_store)

    def _ask_for_size(self, pool: PoolStatus, size: int | None) -> None:
        from openrag_tui.ui.screens.confirm import ConfirmScreen

        if size is None or size == self.requested.get(pool.name, pool.target):
            return
        if size > 0:
            self._resize(pool.name, size)
            return
        question = (
            f"Scale the {pool.name} pool to 0? Its {pool.ours.alive} actors finish their work, "
            "then end; nothing is indexed by this pool until it is scaled up again."
        )
        self.app.push_screen(
            ConfirmScreen(question, "scale to 0", "keep it"),
            lambda yes: self._resize(pool.name, 0) if yes else None,
        )

    def _resize(self, pool: str, size: int) -> None:
        """Run `openrag-tui scale` for it; a newer request for the same pool supersedes it."""
        if pool in self._resizes:
            self._resizes[pool].set()
        stop = self._resizes[pool] = threading.Event()
        self.requested[pool] = size
        self._show_pool_progress(pool, Text(f"{pool} → {size}: starting…", style="yellow"))
        self.run_worker(
            partial(self._follow_resize, pool, size, stop),
            thread=True,
            exit_on_error=False,
            group=f"resize-{pool}",
        )

    def _follow_resize(self, pool: str, size: int, stop: threading.Event) -> None:
        """Follow `openrag-tui scale --jsonl`: its progress events, then its result or error."""
        from openrag_tui.cluster.processes import StreamCancelled, StreamTimeout

        stream = self.backend.scale_process(pool, size)
        said = ""
        ok = False
        try:
            for event in child_events(stream, RESIZE_TIMEOUT_SECONDS, stop):
                kind = event.get("event")
                if kind == "progress":
                    said = counts_text(event)
                    self.app.call_from_thread(
                        self._show_pool_progress, pool, Text(f"{pool} → {size}: {said}")
                    )
                elif kind == "result":
                    ok = event.get("outcome") == "reached"
                    state = event.get("state") or {}
                    words = OUTCOME_WORDS.get(str(event.get("outcome")), "superseded")
                    said = f"{counts_text(state)}: {words}"
                elif kind == "error":
                    said = str(event.get("message") or "failed")
        except StreamCancelled:
            return  # a newer resize of the same pool took over and reports instead
        except StreamTimeout:
            said = f"no answer within {RESIZE_TIMEOUT_SECONDS:.0f} s"
        ok = ok and stream.returncode == 0
        said = said or f"ended with exit code {stream.returncode}"
        verdict = Text(f"{pool} → {size}: {said}", style="green" if ok else "red")
        self.app.call_from_thread(self._show_pool_progress, pool, verdict)
        self.app.call_from_thread(self.app.backend_changed_env)

    def _show_pool_progress(self, pool: str, line: Text) -> None:
        self._pool_progress[pool] = line
        box = self.query_one("#pool-progress", Static)
        box.display = True
        box.update(Text("\n").join(self._pool_progress.values()))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from openrag_tui.ui.screens.node_detail import NodeDetailScreen

        if isinstance(event.data_table, NodesTable) and self.view is not None:
            node_id = event.row_key.value
            for node in self.view.nodes:
                if node.node.node_id == node_id:
                    self.app.push_screen(NodeDetailScreen(node, self.view, self.backend.history))
