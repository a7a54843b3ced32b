"""`b`: indexing batches from the ledger on disk — progress, rates, ETA, failures — and keys to
submit, retry and cancel.

Reads come from the ledger (it survives the panel, the coordinator and the cluster); changes run
`openrag-tui index|batches ... --jsonl` as child processes, so Ray's driver stays out of the
panel, and their JSON lines say what happened.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, Static

from openrag_tui.cluster.processes import StreamCancelled, StreamTimeout
from openrag_tui.formats import DASH, duration, fraction, plain, rate, shorten_middle
from openrag_tui.indexing.batch import BatchProgress, FileState, FileTask
from openrag_tui.indexing.ledger import LedgerError
from openrag_tui.render import spark
from openrag_tui.ui.backend import child_events
from openrag_tui.ui.keys import key
from openrag_tui.ui.screens.base import PanelModal, PanelScreen
from openrag_tui.ui.screens.confirm import ConfirmScreen
from openrag_tui.ui.widgets.footer import PanelFooter
from openrag_tui.ui.widgets.table import KeyedTable
from openrag_tui.ui.workers import OneAtATime
from openrag_tui.workspace import display_path

REFRESH_SECONDS = 2.0
#: how long a submit, retry or cancel may take before the panel stops waiting (seconds)
COMMAND_TIMEOUT_SECONDS = 120.0
BAR_WIDTH = 8
SPARK_WIDTH = 16
LISTED = 6
ID_WIDTH = 12
#: (states, glyph style) of the progress bar's parts, in order
BAR_PARTS = (
    ((FileState.COMPLETED, FileState.SKIPPED), "green"),
    ((FileState.FAILED,), "red"),
    ((FileState.CANCELLED,), "yellow"),
)
EMPTY_HINT = (
    "No batches yet: n indexes a folder of the data volume (the demo's holds `samples`: "
    "n, type samples, enter, a partition name, enter)."
)


def rates_text(files: list[float], pages: list[float], minutes: float) -> Text:
    """Indexing's files/s and pages/s over the history window, as sparklines and the latest."""
    text = Text()
    for label, values in (("files/s", files), ("pages/s", pages)):
        text.append(f"{label} ", style="bold")
        text.append(spark(values, SPARK_WIDTH), style="cyan")
        text.append(f" {rate(values[-1]) if values else DASH}   ")
    text.append(f"last {minutes:g} min", style="dim")
    return text


def progress_bar(batch: BatchProgress) -> Text:
    """`██████░░░░ 12/20`: good files green, failed red, cancelled yellow, the rest to come."""
    total = batch.total or 1
    bar = Text()
    used = 0
    for states, style in BAR_PARTS:
        files = sum(batch.counts.get(state.value, 0) for state in states)
        cells = min(round(files / total * BAR_WIDTH), BAR_WIDTH - used)
        if files and not cells and used < BAR_WIDTH:
            cells = 1  # a failure never vanishes from the bar
        bar.append("█" * cells, style=style)
        used += cells
    bar.append("░" * (BAR_WIDTH - used), style="bright_black")
    return bar.append(f" {fraction(batch.done, batch.total)}")


def state_text(batch: BatchProgress) -> Text:
    """The batch's state as the operator reads it: a mostly good batch with failures says how
    many failed rather than `failed`."""
    failed = batch.counts.get(FileState.FAILED.value, 0)
    if batch.state == "failed" and failed < batch.total:
        return Text(f"{failed} failed", style="bold red")
    styles = {
        "done": "green", "failed": "bold red", "cancelled": "yellow", "running": "cyan",
        "paused": "bold yellow",
    }  # fmt: skip
    return Text(batch.state, style=styles.get(batch.state, "dim"))


def timing_text(batch: BatchProgress, now: float) -> str:
    """What is left (ETA) while the batch runs; how long it took once finished."""
    if batch.finished:
        return duration(batch.duration_seconds(now))
    return duration(batch.eta_seconds(now))


def counts_text(batch: BatchProgress) -> str:
    """Per-state counts, in the order a file moves through them, zeros left out."""
    return "  ".join(
        f"{state.value.lower()} {batch.counts[state.value]}"
        for state in FileState
        if batch.counts.get(state.value)
    )


def files_text(files: list[FileTask]) -> Text:
    """The failed files with their reason, then the skipped ones with theirs."""
    text = Text()
    for state, style in ((FileState.FAILED, "red"), (FileState.SKIPPED, "yellow")):
        listed = [task for task in files if task.state is state]
        for task in listed[:LISTED]:
            text.append(f"{state.value.lower()} ", style=style)
            text.append_text(plain(f"{display_path(Path(task.path))}: {task.error or ''}"))
            text.append("\n")
        if len(listed) > LISTED:
            text.append(
                f"… and {len(listed) - LISTED} more {state.value.lower()} "
                "(openrag-tui batches show ID)\n"
            )
    return text


class BatchesTable(KeyedTable):
    COLUMNS = (
        ("batch", ID_WIDTH),
        ("partition", 9),
        ("state", None),
        ("progress", None),
        ("files/s", None),
        ("pages/s", None),
        ("ETA/took", None),
    )


class BatchesScreen(PanelScreen):
    """Every batch of the ledger, newest first; the selected one's failures below."""

    BINDINGS: ClassVar[list[BindingType]] = [
        key("batch-new", "n", "new_batch", "Index…", changes=True),
        key("batch-retry", "R", "retry_batch", "Retry failed", changes=True),
        key("batch-cancel", "c", "cancel_batch", "Cancel batch", changes=True),
        key("batches-search", "f", "search_batch", "Search"),
        key("batches-logs", "l", "failed_logs", "Logs"),
        key("batches-back", "escape", "app.pop_screen", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[BatchProgress] = []
        self._shown: str | None = None  # the batch whose files the detail shows
        self._reads = OneAtATime("batches-read")
        self._leaving = threading.Event()  # ends a command's wait when the screen goes
        self._want: str | None = None  # a batch to select once it is read (a new one)
        self._files: list[FileTask] = []  # the shown batch's files

    def compose(self) -> ComposeResult:
        yield Static(id="batches-where")
        yield Static(id="batches-rates")
        yield BatchesTable(id="batch-table")
        yield Static(id="batch-detail")
        yield Static(id="batch-action")
        yield PanelFooter()

    def on_mount(self) -> None:
        self.query_one("#batch-action").display = False
        self.set_interval(REFRESH_SECONDS, self._refresh)
        self.query_one(BatchesTable).focus()
        self._refresh()

    def on_unmount(self) -> None:
        self._leaving.set()

    # ------------------------------------------------------------ reading

    def _refresh(self) -> None:
        """Read again unless a read is still out (a hung volume must not pile up threads)."""
        selected = self._want or self.query_one(BatchesTable).selected_key
        self._reads.start(self, lambda: self._read(selected))

    def _read(self, selected: str | None) -> None:
        backend = self.app.backend
        try:
            where = backend.where()
            batches = backend.list_batches()
            known = {batch.batch_id for batch in batches}
            selected = selected if selected in known else (batches[0].batch_id if batches else None)
            files = backend.batch_files(selected) if selected else []
        except (LedgerError, OSError) as error:
            self.app.call_from_thread(self._say, plain(str(error), "red"))
            return
        self.app.call_from_thread(self._show, where.ledger, batches, files, selected)

    def _show(
        self,
        ledger: Path,
        batches: list[BatchProgress],
        files: list[FileTask],
        selected: str | None,
    ) -> None:
        self.query_one("#batches-where", Static).update(
            Text.assemble(("ledger ", "bold"), plain(display_path(ledger)))
        )
        self.batches = batches
        self.query_one("#batches-rates", Static).update(
            rates_text(*self.app.backend.history.rates(), self.app.backend.history.minutes)
        )
        now = self.app.backend.clock()
        table = self.query_one(BatchesTable)
        table.refill(
            (
                batch.batch_id,
                (
                    shorten_middle(batch.batch_id, ID_WIDTH, tail=ID_WIDTH - 1),
                    plain(shorten_middle(batch.partition, 10)),
                    state_text(batch),
                    progress_bar(batch),
                    rate(batch.files_per_second(now)),
                    rate(batch.pages_per_second(now)),
                    timing_text(batch, now),
                ),
            )
            for batch in batches
        )
        if selected is not None:
            table.select(selected)
            if selected == self._want:
                self._want = None
        self._shown = files[0].batch_id if files else selected
        self._show_detail(files)

    def _show_detail(self, files: list[FileTask]) -> None:
        self._files = files
        detail = self.query_one("#batch-detail", Static)
        batch = self._selected()
        if batch is None:
            detail.update(Text(EMPTY_HINT, "dim"))
            return
        text = Text.assemble((f"{batch.batch_id}  ", "bold"), counts_text(batch))
        if batch.target == "openrag":
            text.append("  → OpenRAG", style="bold")
            if not batch.finished:
                text.append(f", {batch.in_flight} in flight")
        else:
            text.append("  → the pools", style="dim")
        text.append("\n")
        if batch.paused:
            text.append("paused ", style="bold yellow").append_text(plain(batch.paused))
            text.append("\n")
        if files and files[0].batch_id == batch.batch_id:
            text.append_text(files_text(files))
        detail.update(text)

    def on_data_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        key_value = event.row_key.value if event.row_key is not None else None
        if key_value is not None and key_value != self._shown:  # a refill: no re-read
            self._refresh()

    def _selected(self) -> BatchProgress | None:
        selected = self.query_one(BatchesTable).selected_key
        return next((b for b in self.batches if b.batch_id == selected), None)

    # ------------------------------------------------------------ changing

    def action_new_batch(self) -> None:
        def submit(answer: tuple[str, str, bool] | None) -> None:
            if answer is not None:
                path, partition, force = answer
                args = ["index", path, "--partition", partition, *(["--force"] * force)]
                self._run_command(*args)

        self.app.push_screen(SubmitScreen(), submit)

    def action_retry_batch(self) -> None:
        batch = self._selected()
        if batch is None:
            return
        if not batch.counts.get(FileState.FAILED.value):
            self._say(Text(f"{batch.batch_id}: no failed file to retry", "yellow"))
            return
        self._run_command("batches", "retry", batch.batch_id)

    def action_cancel_batch(self) -> None:
        batch = self._selected()
        if batch is None:
            return
        if batch.finished:
            said = f"{batch.batch_id}: already {batch.state}, nothing to cancel"
            self._say(Text(said, "yellow"))
            return
        then = (
            "its tasks inside OpenRAG are asked to stop."
            if batch.target == "openrag"
            else "files being processed now finish."
        )
        question = (
            f"Cancel batch {batch.batch_id} ({batch.partition})? Its queued files are "
            f"cancelled; {then}"
        )
        self.app.push_screen(
            ConfirmScreen(question, "cancel the batch", "keep it"),
            lambda yes: self._run_command("batches", "cancel", batch.batch_id) if yes else None,
        )

    def action_failed_logs(self) -> None:
        """The pools' logs, searched for the selected batch's first failed file: its worker
        names the file in the line it writes when a task fails."""
        from openrag_tui.ui.screens.logs import LogsScreen

        failed = [t for t in self._files if t.state is FileState.FAILED]
        search = Path(failed[0].path).name if failed else ""
        self.app.push_screen(LogsScreen(["indexer", "marker"], search=search))

    def action_search_batch(self) -> None:
        """Search the selected batch's partition."""
        batch = self._selected()
        self.app.action_open_search(batch.partition if batch else "")

    @work(thread=True, exit_on_error=False, group="batches-command")
    def _run_command(self, *args: str) -> None:
        self.app.call_from_thread(self._say, plain(f"openrag-tui {' '.join(args)} …", "yellow"))
        stream = self.app.backend.cli_process(*args, "--jsonl")
        said, ok = "", False
        try:
            for event in child_events(stream, COMMAND_TIMEOUT_SECONDS, self._leaving):
                said, ok, new = _event_words(event, said, ok)
                if new:
                    self._want = new
                    self.app.call_from_thread(self._refresh)
        except StreamTimeout:
            said = f"no answer within {COMMAND_TIMEOUT_SECONDS:.0f} s"
        except StreamCancelled:
            return  # the screen is gone
        ok = ok and stream.returncode == 0
        said = said or f"ended with exit code {stream.returncode}"
        self.app.call_from_thread(self._say, plain(said, "green" if ok else "red"))
        self.app.call_from_thread(self._refresh)

    def _say(self, text: Text) -> None:
        box = self.query_one("#batch-action", Static)
        box.display = True
        box.update(text)


def _event_words(event: dict, said: str, ok: bool) -> tuple[str, bool, str | None]:
    """What a child's event means for the action line: (words, ok, a new batch to select)."""
    kind = event.get("event")
    batch = event.get("batch_id")
    if kind == "submitted":
        return f"batch {batch} submitted: {event.get('files')} file(s)", True, str(batch)
    if kind == "result" and "cancelled" in event:
        return f"{batch}: {event['cancelled']} file(s) cancelled", True, None
    if kind == "result" and "retried" in event:
        return f"{batch}: {event['retried']} failed file(s) queued again", True, None
    if kind == "error":
        return str(event.get("message") or "failed"), False, None
    return said, ok, None


class SubmitScreen(PanelModal):
    """A path (folder, glob or file) and a partition, checked as they are entered: a path is
    looked for in the panel's working folder, then in the data volume (as `index` does)."""

    BINDINGS: ClassVar[list[BindingType]] = [key("submit-cancel", "escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("[b]Index documents[/]  a folder (recursive), a glob or a file")
            yield Input(
                placeholder="path (relative: the working folder, else the data volume)", id="path"
            )
            yield Input(placeholder="partition", id="partition")
            yield Checkbox("force: index again content already indexed", id="force")
            yield Static(id="submit-verdict")
            yield Static("[dim]enter: next / submit · space: force · esc: cancel[/]")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = self.query_one("#path", Input).value.strip()
        partition = self.query_one("#partition", Input).value.strip()
        if event.input.id == "path" and path:
            self._check(path, partition or None)
            self.query_one("#partition", Input).focus()
        elif path and partition:
            self._check(path, partition, submit=True)
        elif not path:
            self.query_one("#path", Input).focus()

    @work(thread=True, exit_on_error=False, exclusive=True, group="submit-check")
    def _check(self, path: str, partition: str | None, submit: bool = False) -> None:
        """Refuse a path outside the volume (or a bad partition) now, not after the submit."""
        try:
            notes = self.app.backend.check_batch(path, partition)
        except Exception as error:  # BadPath, BadPartition, BadInput: one sentence
            self.app.call_from_thread(self._verdict, plain(str(error), "red"))
            return
        if submit:
            force = self.query_one("#force", Checkbox).value
            self.app.call_from_thread(self.dismiss, (path, partition, force))
        else:
            self.app.call_from_thread(self._verdict, plain("; ".join(notes) or "ok", "green"))

    def _verdict(self, text: Text) -> None:
        self.query_one("#submit-verdict", Static).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
