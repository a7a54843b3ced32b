"""A cluster start or stop as it happens: Ray's output line by line, the step and the time.

The run is iterated in a worker thread; lines reach the Log widget through call_from_thread,
so the screen stays responsive and `x` cancels at any moment.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Log, Static

from openrag_tui.cluster.lifecycle import ClusterRun
from openrag_tui.ui.keys import key
from openrag_tui.ui.messages import ClusterChanged
from openrag_tui.ui.screens.base import PanelScreen
from openrag_tui.ui.widgets.footer import PanelFooter

#: lines kept in the pane (Ray's output of one start or stop is a few hundred at most)
MAX_LINES = 5_000


class ClusterLogScreen(PanelScreen):
    """Runs one ClusterRun and shows it; `escape` goes back once it ended."""

    BINDINGS: ClassVar[list[BindingType]] = [
        key("log-cancel", "x", "cancel_run", "Cancel"),
        key("log-back", "escape", "back", "Back"),
    ]

    def __init__(self, run: ClusterRun) -> None:
        super().__init__()
        self.run = run
        self._done = False  # the worker ended (with a result, or with an error it reported)

    def compose(self) -> ComposeResult:
        yield Static(id="run-status")
        yield Log(id="run-log", max_lines=MAX_LINES, highlight=False)
        yield PanelFooter()

    def on_mount(self) -> None:
        self._show_status()
        self.set_interval(0.5, self._show_status)
        log = self.query_one(Log)
        log.focus()
        self._follow(log)

    def on_unmount(self) -> None:
        self.run.cancel()  # quitting mid-run ends Ray's command rather than waiting for it

    @work(thread=True, exit_on_error=False, group="cluster-run")
    def _follow(self, log: Log) -> None:
        try:
            for line in self.run:
                self.app.call_from_thread(log.write_line, line)
        except Exception as error:  # a bug in a run must not leave the pane "running" forever
            self.app.call_from_thread(
                log.write_line, f"openrag-tui: {type(error).__name__}: {error}"
            )
            self.run.cancel()
        finally:
            self.app.call_from_thread(self._ended)

    def _ended(self) -> None:
        """The header now shows the result; the keys change from cancel to back."""
        self._done = True
        self._show_status()
        self.refresh_bindings()
        for screen in self.app.screen_stack:  # the main screen polls again at once
            screen.post_message(ClusterChanged())

    def _show_status(self) -> None:
        result = self.run.result
        if result is None:
            state = Text("running", style="bold yellow")
        elif result.ok:
            state = Text("done", style="bold green")
        else:
            state = Text(result.outcome.value, style="bold red")
        status = Text.assemble(
            (self.run.title, "bold"), "  ", state, f"  {self.run.elapsed:.0f}s\n",
            ("step: ", "dim"), self.run.step,
        )  # fmt: skip
        if result is not None:
            status.append("\n").append(result.message)
        self.query_one("#run-status", Static).update(status)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        running = self.run.result is None and not self._done
        if action == "cancel_run":
            return running
        if action == "back":
            return not running
        return super().check_action(action, parameters)

    def action_cancel_run(self) -> None:
        self.run.cancel()

    def action_back(self) -> None:
        self.app.pop_screen()
