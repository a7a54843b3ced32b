"""`b`: indexing batches from the ledger on disk — progress, rates, ETA, failures — and keys to
submit, retry and cancel.

Reads come from the ledger (it survives the panel, the coordinator and the cluster); changes run
`openrag-tui index|batches ...` as child processes, so Ray's driver stays out of the panel.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Input, Static

from openrag_tui.cluster.processes import StreamCancelled, StreamTimeout
from openrag_tui.indexing.batch import BatchProgress, FileState, FileTask
from openrag_tui.indexing.ledger import LedgerError
from openrag_tui.ui.keys import key
from openrag_tui.ui.screens.base import PanelModal, PanelScreen
from openrag_tui.ui.screens.confirm import ConfirmScreen
from openrag_tui.workspace import display_path

REFRESH_SECONDS = 2.0
#: how long a submit, retry or cancel may take before the panel stops waiting (seconds)
COMMAND_TIMEOUT_SECONDS = 120.0
BAR_WIDTH = 10
FAILED_SHOWN = 6


def progress_bar(batch: BatchProgress) -> Text:
    """`██████░░░░ 12/20`: finished files of all, failures in red."""
    total = batch.total or 1
    good = round((batch.done - batch.counts.get(FileState.FAILED.value, 0)) / total * BAR_WIDTH)
    bad = round(batch.counts.get(FileState.FAILED.value, 0) / total * BAR_WIDTH)
    bar = Text().append("█" * good, style="green").append("█" * bad, style="red")
    bar.append("░" * (BAR_WIDTH - good - bad), style="bright_black")
    return bar.append(f" {batch.done}/{batch.total}")


def rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def counts_text(batch: BatchProgress) -> str:
    """Per-state counts, in the order a file moves through them, zeros left out."""
    return "  ".join(
        f"{state.value.lower()} {batch.counts[state.value]}"
        for state in FileState
        if batch.counts.get(state.value)
    )


def failures_text(files: list[FileTask]) -> Text:
    failed = [task for task in files if task.state is FileState.FAILED]
    text = Text()
    for task in failed[:FAILED_SHOWN]:
        text.append(f"{display_path(Path(task.path))}: ", style="red").append(f"{task.error}\n")
    if len(failed) > FAILED_SHOWN:
        text.append(f"… and {len(failed) - FAILED_SHOWN} more (openrag-tui batches show ID)")
    return text


class BatchesScreen(PanelScreen):
    """Every batch of the ledger, newest first; the selected one's failures below."""

    BINDINGS: ClassVar[list[BindingType]] = [
        key("batch-new", "n", "new_batch", "Index…", changes=True),
        key("batch-retry", "R", "retry_batch", "Retry failed", changes=True),
        key("batch-cancel", "c", "cancel_batch", "Cancel batch", changes=True),
        key("batches-back", "escape", "app.pop_screen", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[BatchProgress] = []
        self._shown: str | None = None  # the batch whose files the detail shows
        self._reading = False
        self._leaving = threading.Event()  # ends a command's wait when the screen goes

    def compose(self) -> ComposeResult:
        yield Static(id="batches-where")
        yield DataTable(id="batch-table", cursor_type="row", zebra_stripes=False)
        yield Static(id="batch-detail")
        yield Static(id="batch-action")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.cursor_foreground_priority = "renderable"
        columns = (("batch", 8), ("partition", 10), ("state", 9), ("progress", 16),
                   ("files/s", 7), ("pages/s", 7), ("ETA", 6))  # fmt: skip
        for label, width in columns:
            table.add_column(label, width=width)
        ledger = self.app.backend.where().ledger
        self.query_one("#batches-where", Static).update(f"[b]ledger[/] {display_path(ledger)}")
        self.query_one("#batch-action").display = False
        self.set_interval(REFRESH_SECONDS, self._refresh)
        table.focus()
        self._refresh()

    def on_unmount(self) -> None:
        self._leaving.set()

    # ------------------------------------------------------------ reading

    def _refresh(self) -> None:
        """Read again unless a read is still out (a hung volume must not pile up threads)."""
        if not self._reading:
            self._reading = True
            self._read(self._selected_id())

    @work(thread=True, exit_on_error=False, group="batches-read")
    def _read(self, selected: str | None) -> None:
        backend = self.app.backend
        try:
            batches = backend.list_batches()
            selected = selected or (batches[0].batch_id if batches else None)
            files = backend.batch_files(selected) if selected else []
        except (LedgerError, OSError) as error:
            self.app.call_from_thread(self._say, Text(str(error), style="red"))
            return
        finally:
            self._reading = False
        self.app.call_from_thread(self._show, batches, files, backend.clock())

    def _show(self, batches: list[BatchProgress], files: list[FileTask], now: float) -> None:
        self.batches = batches
        table = self.query_one(DataTable)
        selected = self._selected_id()
        table.clear()
        for batch in batches:
            table.add_row(
                batch.batch_id[:8],
                batch.partition,
                _state(batch.state),
                progress_bar(batch),
                rate(batch.files_per_second(now)),
                rate(batch.pages_per_second(now)),
                eta(batch.eta_seconds(now)),
                key=batch.batch_id,
            )
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)
        self._shown = files[0].batch_id if files else None
        self._show_detail(files)

    def _show_detail(self, files: list[FileTask]) -> None:
        detail = self.query_one("#batch-detail", Static)
        batch = self._selected()
        if batch is None:
            detail.update(Text("No batches yet: n indexes a folder of the data volume.", "dim"))
            return
        text = Text.assemble((f"{batch.batch_id}  ", "bold"), counts_text(batch), "\n")
        if files and files[0].batch_id == batch.batch_id:
            text.append_text(failures_text(files))
        detail.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value != self._shown:  # a refill highlights the same row: no re-read
            self._refresh()

    def _selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _selected(self) -> BatchProgress | None:
        selected = self._selected_id()
        return next((b for b in self.batches if b.batch_id == selected), None)

    # ------------------------------------------------------------ changing

    def action_new_batch(self) -> None:
        volume = self.app.backend.where().volume

        def submit(answer: tuple[str, str] | None) -> None:
            if answer is not None:
                path, partition = answer
                # the dialog asks for a path inside the data volume: relative ones start there
                self._run_command("index", str(volume / path), "--partition", partition)

        self.app.push_screen(SubmitScreen(), submit)

    def action_retry_batch(self) -> None:
        batch = self._selected()
        if batch is not None:
            self._run_command("batches", "retry", batch.batch_id)

    def action_cancel_batch(self) -> None:
        batch = self._selected()
        if batch is None:
            return
        question = (
            f"Cancel batch {batch.batch_id[:8]} ({batch.partition})? Its queued files are "
            "cancelled; files being processed now finish."
        )
        self.app.push_screen(
            ConfirmScreen(question, "cancel the batch", "keep it"),
            lambda yes: self._run_command("batches", "cancel", batch.batch_id) if yes else None,
        )

    @work(thread=True, exit_on_error=False, group="batches-command")
    def _run_command(self, *args: str) -> None:
        self.app.call_from_thread(self._say, Text(f"openrag-tui {' '.join(args)} …", "yellow"))
        stream = self.app.backend.cli_process(*args)
        lines: list[str] = []
        try:
            for line in stream.lines(time.monotonic() + COMMAND_TIMEOUT_SECONDS, self._leaving):
                lines.append(line.strip())
        except StreamTimeout:
            lines.append(f"no answer within {COMMAND_TIMEOUT_SECONDS:.0f} s")
        except StreamCancelled:
            return  # the screen is gone
        said = next((line for line in reversed(lines) if line), "done")
        style = "green" if stream.returncode == 0 else "red"
        self.app.call_from_thread(self._say, Text(said.removeprefix("openrag-tui: "), style))
        self.app.call_from_thread(self._refresh)

    def _say(self, text: Text) -> None:
        box = self.query_one("#batch-action", Static)
        box.display = True
        box.update(text)


def _state(state: str) -> Text:
    styles = {"done": "green", "failed": "bold red", "cancelled": "yellow", "running": "cyan"}
    return Text(state, style=styles.get(state, "dim"))


class SubmitScreen(PanelModal):
    """A path (folder, glob or file) inside the data volume, and a partition."""

    BINDINGS: ClassVar[list[BindingType]] = [key("submit-cancel", "escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("[b]Index documents[/]  a folder (recursive), a glob or a file")
            yield Input(placeholder="path inside the data volume (relative to it)", id="path")
            yield Input(placeholder="partition", id="partition")
            yield Static("[dim]enter: next / submit · esc: cancel[/]", id="submit-help")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = self.query_one("#path", Input).value.strip()
        partition = self.query_one("#partition", Input).value.strip()
        if event.input.id == "path" or not partition:
            self.query_one("#partition", Input).focus()
        elif path:
            self.dismiss((path, partition))

    def action_cancel(self) -> None:
        self.dismiss(None)
