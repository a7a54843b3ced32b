"""The main screen: nodes and pools, refreshed by one self-rescheduling poll.

The next poll is armed only when the last one finished, so polls never overlap; a failed poll
backs off; a view that arrives while a modal is open waits until the screen is back on top.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from openrag_tui.cluster.allocation import ClusterView
from openrag_tui.cluster.dashboard import DashboardError
from openrag_tui.render import bar_legend, pending_lines, warning_lines
from openrag_tui.ui.backend import Backend
from openrag_tui.ui.messages import ReadFailed, ViewRead
from openrag_tui.ui.widgets.cluster_tables import NodesTable, PoolsTable
from openrag_tui.ui.widgets.status_bar import Freshness, StatusBar

MAX_BACKOFF_SECONDS = 30.0


def backoff_seconds(interval: float, failures: int) -> float:
    """Retry delay after `failures` failed polls in a row: doubling, capped."""
    return min(interval * 2 ** max(failures - 1, 0), MAX_BACKOFF_SECONDS)


class MainScreen(Screen):
    """Nodes, pools, pending actors and warnings, kept fresh."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh_now", "Refresh"),
        Binding("p", "toggle_pause", "Pause"),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.view: ClusterView | None = None
        self.failures = 0
        self.last_error = ""
        self.paused = False
        self._polling = False
        self._next_poll: Timer | None = None
        self._unshown: ClusterView | None = None

    @property
    def interval(self) -> float:
        return self.backend.workspace.settings.refresh_seconds

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(id="banner")
        with VerticalScroll(id="body"):
            yield NodesTable(id="nodes")
            yield Static(bar_legend(), id="legend")
            yield PoolsTable(id="pools")
            yield Static(id="pending")
            yield Static(id="warnings")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#banner").display = False
        self._show_status()
        self.set_interval(1.0, self._show_status)
        self._poll()

    # ------------------------------------------------------------ polling

    def _poll(self) -> None:
        self._next_poll = None
        if self._polling:
            return
        self._polling = True
        self._read_cluster()

    @work(thread=True, exit_on_error=False, group="poll")
    def _read_cluster(self) -> None:
        try:
            self.post_message(ViewRead(self.backend.read_view()))
        except DashboardError as error:
            self.post_message(ReadFailed(str(error)))
        except Exception as error:  # a bug must not kill the poll loop: show it and go on
            self.post_message(ReadFailed(f"{type(error).__name__}: {error}"))

    def _arm_next_poll(self, delay: float) -> None:
        self._polling = False
        if not self.paused:
            self._next_poll = self.set_timer(delay, self._poll)

    def on_view_read(self, message: ViewRead) -> None:
        self.failures = 0
        self.last_error = ""
        self.view = message.view
        self._show_view(message.view)
        self._arm_next_poll(self.interval)

    def on_read_failed(self, message: ReadFailed) -> None:
        self.failures += 1
        self.last_error = message.error
        self._show_status()
        self._arm_next_poll(backoff_seconds(self.interval, self.failures))

    # ------------------------------------------------------------ drawing

    def on_screen_resume(self) -> None:
        if self._unshown is not None:
            self._show_view(self._unshown)

    def _show_view(self, view: ClusterView) -> None:
        if self.app.screen is not self:  # nothing redraws under a modal
            self._unshown = view
            return
        self._unshown = None
        self.query_one(NodesTable).show(view)
        self.query_one(PoolsTable).show(view)
        pending = self.query_one("#pending", Static)
        pending.display = bool(view.pending)
        pending.update(Text("Pending actors\n", style="bold") + pending_lines(view))
        warnings = self.query_one("#warnings", Static)
        warnings.display = bool(view.warnings)
        warnings.update(warning_lines(view))
        self._show_status()

    def _show_status(self) -> None:
        freshness = Freshness(
            view=self.view,
            now=self.backend.clock(),
            interval=self.interval,
            paused=self.paused,
            failing=self.failures > 0,
        )
        self.query_one(StatusBar).show(self.backend.dashboard_url, freshness)
        banner = self.query_one("#banner", Static)
        banner.display = self.failures > 0
        if self.failures:
            retry = backoff_seconds(self.interval, self.failures)
            banner.update(
                Text.assemble(
                    ("Dashboard unreachable ", "bold"),
                    f"{self.backend.dashboard_url}\n{self.last_error}\n",
                    f"attempt {self.failures} failed; retrying every {retry:g}s "
                    "(the rest of the panel keeps working)",
                )
            )

    # ------------------------------------------------------------ actions

    def action_refresh_now(self) -> None:
        if self._polling:
            return  # one is in flight; its result is as fresh as a new one
        if self._next_poll is not None:
            self._next_poll.stop()
        self._poll()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused and self._next_poll is not None:
            self._next_poll.stop()
            self._next_poll = None
        elif not self.paused and not self._polling:
            self._poll()
        self._show_status()
