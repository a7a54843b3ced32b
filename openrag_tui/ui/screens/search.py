"""`f`: search the vector index: pick a partition, type a query, read the results (file and
pages), open one to read its chunk. Keyboard only, and it fits 80×24.

The search runs in a worker thread (the first one loads the embedder and the Milvus client,
about a second); results and errors come back as one line each.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Static

from openrag_tui.formats import plain, shorten_middle
from openrag_tui.indexing.milvus import Hit
from openrag_tui.ui.keys import key
from openrag_tui.ui.screens.base import PanelModal, PanelScreen
from openrag_tui.ui.widgets.footer import PanelFooter
from openrag_tui.ui.widgets.table import KeyedTable

TOP = 10
FILE_WIDTH = 34


class ResultsTable(KeyedTable):
    COLUMNS = (("#", None), ("score", None), ("file", FILE_WIDTH), ("pages", None))


class SearchScreen(PanelScreen):
    """Partition and query on top, results below, the selected chunk's start under them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        key("search-back", "escape", "back", "Back"),
        key("search-query", "ctrl+f", "focus_query", "Query"),
    ]

    def __init__(self, partition: str = "") -> None:
        super().__init__()
        self.partition = partition
        self.hits: list[Hit] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="search-inputs"):
            yield Input(self.partition, placeholder="partition", id="search-partition")
            yield Input(placeholder="query (enter searches)", id="search-query")
        yield Static(id="search-said")
        yield ResultsTable(id="search-results")
        yield Static(id="search-excerpt")
        yield PanelFooter()

    def on_mount(self) -> None:
        target = "#search-query" if self.partition else "#search-partition"
        self.query_one(target, Input).focus()
        self._say(Text("enter searches · ↓ to the results · enter opens one · esc back", "dim"))
        if not self.partition:
            self._suggest_partition()

    @work(thread=True, exit_on_error=False, group="search-partitions")
    def _suggest_partition(self) -> None:
        """The newest batch's partition, as a start."""
        try:
            batches = self.app.backend.list_batches()
        except Exception:
            return
        if batches:
            self.app.call_from_thread(self._prefill, batches[0].partition)

    def _prefill(self, partition: str) -> None:
        box = self.query_one("#search-partition", Input)
        if not box.value:
            box.value = partition

    def on_input_submitted(self, event: Input.Submitted) -> None:
        partition = self.query_one("#search-partition", Input).value.strip()
        query = self.query_one("#search-query", Input).value.strip()
        if event.input.id == "search-partition" or not query:
            self.query_one("#search-query", Input).focus()
            return
        if not partition:
            self.query_one("#search-partition", Input).focus()
            return
        self._say(plain(f"searching {partition!r} for {query!r} …", "yellow"))
        self._search(partition, query)

    @work(thread=True, exit_on_error=False, exclusive=True, group="search")
    def _search(self, partition: str, query: str) -> None:
        try:
            results = self.app.backend.search(partition, query, TOP)
        except Exception as error:  # Unavailable, BadInput, EmbedderMismatch: one sentence
            self.app.call_from_thread(self._say, plain(str(error), "red"))
            return
        self.app.call_from_thread(self._show, list(results.hits), partition)

    def _show(self, hits: list[Hit], partition: str) -> None:
        self.hits = hits
        table = self.query_one(ResultsTable)
        table.refill(
            (
                str(hit.rank),
                (
                    str(hit.rank),
                    f"{hit.score:.4f}",
                    shorten_middle(hit.file_id, FILE_WIDTH),
                    ",".join(map(str, hit.pages)),
                ),
            )
            for hit in hits
        )
        if not hits:
            self._say(plain(f"nothing found in partition {partition!r}", "yellow"))
            return
        noun = "result" if len(hits) == 1 else "results"
        self._say(plain(f"{len(hits)} {noun} in partition {partition!r}", "green"))
        table.focus()
        self._show_excerpt()

    def _selected(self) -> Hit | None:
        rank = self.query_one(ResultsTable).selected_key
        return next((hit for hit in self.hits if str(hit.rank) == rank), None)

    def _show_excerpt(self) -> None:
        hit = self._selected()
        box = self.query_one("#search-excerpt", Static)
        if hit is None:
            box.update("")
            return
        box.update(plain(" ".join(hit.text.split())[:600]))

    def on_data_table_row_highlighted(self, _event: KeyedTable.RowHighlighted) -> None:
        self._show_excerpt()

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        hit = self._selected()
        if hit is not None:
            self.app.push_screen(ChunkScreen(hit))

    def _say(self, text: Text) -> None:
        self.query_one("#search-said", Static).update(text)

    def action_focus_query(self) -> None:
        self.query_one("#search-query", Input).focus()

    def action_back(self) -> None:
        self.app.pop_screen()


class ChunkScreen(PanelModal):
    """One result's whole chunk, with where it comes from; it scrolls."""

    BINDINGS: ClassVar[list[BindingType]] = [key("chunk-close", "escape,q", "close", "Close")]

    def __init__(self, hit: Hit) -> None:
        super().__init__()
        self.hit = hit

    def compose(self) -> ComposeResult:
        hit = self.hit
        pages = ",".join(map(str, hit.pages)) or "–"
        with Vertical(id="dialog"):
            heading = Text.assemble(
                (f"#{hit.rank} ", "bold"),
                plain(hit.file_id, "bold"),
                f"  pages {pages} · chunk {hit.chunk_index} · score {hit.score:.4f}\n",
                plain(hit.source, "dim"),
            )
            yield Static(heading)
            with VerticalScroll(id="chunk-text"):
                yield Static(Text("\n").join(plain(line) for line in hit.text.splitlines()))
            yield Static("[dim]↑↓ pgup/pgdn scroll · esc close[/]")

    def on_mount(self) -> None:
        self.query_one("#chunk-text").focus()

    def action_close(self) -> None:
        self.dismiss(None)
