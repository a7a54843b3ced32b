"""An actor's or a pool's log: the last lines of its worker's stdout and stderr from the
dashboard, follow mode (`f`) and a search inside (`/`, `n`, `N`).

Everything is read in thread workers through the backend (its own dashboard client: follow
holds streams open); nothing reaches the terminal behind the panel. A pool's lines, or several
actors', say whose they are; a missing or rotated log says so in the status line.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Input, RichLog, Static

from openrag_tui.cluster.dashboard import DashboardError
from openrag_tui.cluster.logs import (
    LogLine,
    LogsError,
    NoAliveActors,
    Selection,
    StreamEnded,
    render,
)
from openrag_tui.formats import plain, safe
from openrag_tui.ui.keys import key
from openrag_tui.ui.screens.base import PanelScreen
from openrag_tui.ui.widgets.footer import PanelFooter

LINES = 200
#: lines the screen keeps (follow mode appends): older ones fall off
KEPT_LINES = 5000


class LogsScreen(PanelScreen):
    """The log of `names` (actor names, actor ids or pools), optionally searched for `search`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        key("logs-follow", "f", "toggle_follow", "Follow"),
        key("logs-search", "slash", "search", "Search"),
        key("logs-next", "n", "next_match(1)", "Next"),
        key("logs-previous", "N", "next_match(-1)", "Previous", show=False),
        key("logs-back", "escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, names: Sequence[str], search: str = "") -> None:
        super().__init__()
        self.names = tuple(names)
        self.search_text = search
        self.lines: list[Text] = []
        self.chosen: list[Selection] = []
        self.following = False  # new lines are shown as they come
        self._followed = False  # the follower was started (once per screen)
        self.notes: list[str] = []
        self._stop = threading.Event()
        self._match = -1

    def compose(self) -> ComposeResult:
        yield Static(id="logs-title")
        yield RichLog(id="logs-text", max_lines=KEPT_LINES, wrap=False, markup=False)
        yield Static(id="logs-status")
        yield Input(placeholder="search the log (enter)", id="logs-search")
        yield PanelFooter()

    def on_mount(self) -> None:
        self.query_one("#logs-search").display = False
        self._title()
        self._say("reading…")
        self.run_worker(self._read, thread=True, exit_on_error=False, group="logs")

    def on_unmount(self) -> None:
        self._stop.set()

    # ------------------------------------------------------------ reading

    def _read(self) -> None:
        backend = self.app.backend
        lines: list[Text] = []
        notes: list[str] = []
        try:
            selections = []
            for name in self.names:  # a pool at size 0 is a note; the others are still read
                try:
                    selections.append(backend.log_selection(name))
                except NoAliveActors as error:
                    notes.append(str(error))
            for selection in selections:
                for actor in selection.actors:
                    label = selection.label(actor) if self._prefixed(selections) else None
                    found = backend.log_tail(actor, LINES, selection.label(actor))
                    for stream, texts in (("out", found.out), ("err", found.err)):
                        lines += [_line(text, label, stream) for text in texts]
                    if found.missing:
                        notes.append(found.missing)
        except (LogsError, DashboardError) as error:
            self.app.call_from_thread(self._say, str(error), "red")
            return
        self.app.call_from_thread(self._show, selections, lines, notes)

    def _prefixed(self, selections: Sequence[Selection]) -> bool:
        return len(selections) > 1 or any(selection.prefixed for selection in selections)

    def _show(self, selections: list[Selection], lines: list[Text], notes: list[str]) -> None:
        self.chosen, self.notes = selections, notes
        self.lines = lines[-KEPT_LINES:]
        self._redraw()
        if self.search_text:
            self._find(1, from_end=True)
        else:
            self._status()

    def _follow(self, stop: threading.Event) -> None:
        """The follower: the last lines, then each new one, until the screen goes. One per
        screen: a closed dashboard stream keeps its slot until the log grows (Ray's)."""
        backend = self.app.backend
        prefixed = self._prefixed(self.chosen)
        chosen = self.chosen
        # one selection is followed as such: a pool's new or replaced actors join the follow
        actors = chosen[0] if len(chosen) == 1 else [a for s in chosen for a in s.actors]
        labels = {a.actor_id: s.label(a) for s in chosen for a in s.actors}
        try:
            for item in backend.follow_logs(actors, LINES, stop, labels):
                if stop.is_set():
                    return
                if isinstance(item, LogLine):
                    line = _line(item.text, item.actor if prefixed else None, item.stream)
                    self.app.call_from_thread(self._append, line)
                elif isinstance(item, StreamEnded):
                    self.app.call_from_thread(self._note, item.reason)
        except (LogsError, DashboardError) as error:
            self.app.call_from_thread(self._say, str(error), "red")
        if not stop.is_set():
            self.app.call_from_thread(self._follow_ended)

    def _follow_ended(self) -> None:
        self.following = self._followed = False
        self._title()
        self._note("every followed log has ended")

    # ------------------------------------------------------------ showing

    def _title(self) -> None:
        mode = "following" if self.following else ("paused" if self._followed else "last lines")
        self.query_one("#logs-title", Static).update(
            Text.assemble(("logs ", "bold"), plain(", ".join(self.names)), f"  ({mode})")
        )

    def _redraw(self) -> None:
        shown = self.query_one(RichLog)
        shown.clear()
        for line in self.lines:
            shown.write(self._marked(line))

    def _marked(self, line: Text) -> Text:
        if not self.search_text:
            return line
        marked = line.copy()
        marked.highlight_words([self.search_text], style="reverse", case_sensitive=False)
        return marked

    def _append(self, line: Text) -> None:
        self.lines.append(line)
        del self.lines[:-KEPT_LINES]
        if self.following:  # paused: kept, shown when follow resumes
            self.query_one(RichLog).write(self._marked(line))
        self._status()

    def _note(self, reason: str) -> None:
        self.notes.append(reason)
        self._status()

    def _status(self) -> None:
        count = len(self.lines)
        parts = [f"{count} line{'' if count == 1 else 's'}" if count else "no line written yet"]
        if self.search_text:
            found = len(self._matches())
            parts.append(
                f"{found} matching {self.search_text!r}" if found else
                f"no line has {self.search_text!r}"
            )  # fmt: skip
        parts += self.notes[-2:]
        self._say("  ·  ".join(parts), "red" if self.notes else "dim")

    def _say(self, text: str, style: str = "dim") -> None:
        self.query_one("#logs-status", Static).update(plain(text, style))

    # ------------------------------------------------------------ search

    def _matches(self) -> list[int]:
        needle = self.search_text.lower()
        return [i for i, line in enumerate(self.lines) if needle in line.plain.lower()]

    def _find(self, step: int, from_end: bool = False) -> None:
        matches = self._matches()
        if matches:
            if from_end:
                self._match = matches[-1]
            else:
                after = [i for i in matches if (i - self._match) * step > 0]
                self._match = (
                    (after[0] if step > 0 else after[-1])
                    if after
                    else matches[0 if step > 0 else -1]
                )
            line = self.lines[self._match].plain.lower()
            column = line.find(self.search_text.lower())
            width = self.query_one(RichLog).size.width
            x = 0 if column + len(self.search_text) < width else column - width // 3
            y = self._match  # once the lines just written are laid out
            self.call_after_refresh(
                lambda: self.query_one(RichLog).scroll_to(x=x, y=y, animate=False)
            )
        self._status()

    def action_search(self) -> None:
        field = self.query_one("#logs-search", Input)
        field.display = True
        field.value = self.search_text
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search_text = event.value.strip()
        event.input.display = False
        self.query_one(RichLog).focus()
        self._redraw()
        self._find(1, from_end=True)

    def action_next_match(self, step: int) -> None:
        if self.search_text:
            self._find(step)

    # ------------------------------------------------------------ follow

    def action_toggle_follow(self) -> None:
        """Follow new lines, or pause showing them (the follower goes on until the screen
        goes: reopening streams would use up the dashboard's slots)."""
        alive = [a for s in self.chosen for a in s.actors if a.state == "ALIVE"]
        if not alive:
            self._note("no alive actor to follow")
            return
        self.following = not self.following
        self._title()
        if self.following and not self._followed:  # it starts with the last lines itself
            self._followed = True
            self.lines, self.notes = [], []
            self.query_one(RichLog).clear()
            self.run_worker(lambda: self._follow(self._stop), thread=True, exit_on_error=False,
                            group="logs-follow")  # fmt: skip
        elif self.following:
            self._redraw()


def _line(text: str, label: str | None, stream: str) -> Text:
    """One log line made safe, its actor in front where several write, stderr in red."""
    line = Text()
    if label:  # an actor's name comes from the cluster: made safe like its lines
        line.append(f"[{safe(label)}] ", style="cyan")
    line.append(render(text), style="red" if stream == "err" else "")
    return line
