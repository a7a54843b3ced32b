"""The nodes and pools tables: refilled from each ClusterView, keeping the cursor.

Figures size their columns to their content (never cut); only the node's name has a fixed
width, and a long one loses its middle.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from rich.text import Text

from openrag_tui.formats import DASH, shorten_middle
from openrag_tui.render import (
    amount,
    bar_parts,
    bar_text,
    bar_width,
    node_label,
    node_labels,
    physical_gpus,
    pool_rows,
    reserved_text,
    spark,
)
from openrag_tui.ui.widgets.table import Drawn, KeyedTable

if TYPE_CHECKING:
    from openrag_tui.cluster.allocation import ClusterView, NodeAllocation
    from openrag_tui.cluster.history import History
    from openrag_tui.render import PoolRow

NODE_WIDTH = (10, 40)  # the node's name shrinks within these to leave the figures whole
BAR_WIDTH = (6, 12)
SPARK_WIDTH = 8
#: what a DataTable cell adds around its content
CELL_PADDING = 2


class NodesTable(KeyedTable):
    COLUMNS = (
        ("node", None),
        ("", None),
        ("state", None),
        ("GPU", None),
        ("reserved", None),
        ("free", None),
        ("physical", None),
    )
    #: the last column, a sparkline of the history, shown only where the figures leave room
    RECENT = "recent"

    def show(
        self,
        view: ClusterView,
        filter_text: str = "",
        sort: str = "default",
        history: History | None = None,
    ) -> None:
        """The matching nodes; the name and the bar give up room first on a narrow screen."""
        prepared = prepare(view, history)
        labels = prepared.labels
        nodes = sorted_nodes(matching_nodes(view.nodes, filter_text, labels), sort)
        figures = [prepared.figures[node.node.node_id] for node in nodes]
        widths = [max([len(label)] + [len(row[i]) for row in figures]) for i, label in
                  enumerate(("", "state", "reserved", "free", "physical"))]  # fmt: skip
        room = (self.size.width or 80) - sum(widths) - CELL_PADDING * len(self.COLUMNS) - 1
        longest = max((len(label) for label in labels.values()), default=NODE_WIDTH[0])
        recent = room - SPARK_WIDTH - CELL_PADDING >= min(longest, NODE_WIDTH[1]) + BAR_WIDTH[1]
        self._show_recent(recent and history is not None)
        if self.RECENT in self.columns:
            room -= SPARK_WIDTH + CELL_PADDING
        bar = max(BAR_WIDTH[0], min(BAR_WIDTH[1], room - NODE_WIDTH[0]))
        name = max(NODE_WIDTH[0], min(NODE_WIDTH[1], room - bar))
        with_recent = self.RECENT in self.columns
        self.refill(
            (
                node.node.node_id,
                (
                    shorten_middle(labels[node.node.node_id], name),
                    head,
                    _state(state),
                    Drawn(bar_width(node.gpus_total, bar), bar_text, bar_parts(node),
                          node.gpus_total, bar),
                    reserved,
                    free,
                    physical,
                    *((recent,) if with_recent else ()),
                ),
            )
            for node, (head, state, reserved, free, physical, recent) in zip(
                nodes, figures, strict=True
            )
        )  # fmt: skip

    def _show_recent(self, shown: bool) -> None:
        if shown and self.RECENT not in self.columns:
            self.add_column(self.RECENT, key=self.RECENT)
        elif not shown and self.RECENT in self.columns:
            self.remove_column(self.RECENT)


class PoolsTable(KeyedTable):
    """Our pools, and a line under each for OpenRAG's own actors of it when there are any."""

    COLUMNS = (
        ("pool", None),
        ("target", None),
        ("alive", None),
        ("pend", None),
        ("GPU/actor", None),
        ("reserved", None),
        ("fits", None),
        ("slots", None),
    )
    #: the GPU memory one actor holds (median/max of the history, and its share): the last
    #: column, shown where the screen has room for it (node detail always lists it)
    MEMORY = "mem/actor"

    def show(self, view: ClusterView, history: History | None = None) -> None:
        rows = [(row.key, row.cells) for row in prepare(view, history).pool_rows]
        widths = [
            max([len(label)] + [len(str(cells[i])) for _, cells in rows])
            for i, label in enumerate((*(label for label, _ in self.COLUMNS), self.MEMORY))
        ]
        room = (self.size.width or 80) - sum(widths) - CELL_PADDING * len(widths) - 1
        shown = room >= 0 and any(cells[-1] != DASH for _, cells in rows)
        if shown and self.MEMORY not in self.columns:
            self.add_column(self.MEMORY, key=self.MEMORY)
        elif not shown and self.MEMORY in self.columns:
            self.remove_column(self.MEMORY)
        self.refill((key, cells if shown else cells[:-1]) for key, cells in rows)

    @property
    def selected_pool(self) -> str | None:
        """The pool of the row under the cursor (OpenRAG's line belongs to its pool)."""
        key = self.selected_key
        return None if key is None else key.split(":")[0]


class Prepared(NamedTuple):
    """What the tables show of a view, whatever the screen's filter, sort and width."""

    labels: dict[str, str]  # by node id
    #: by node id: role, state, reserved, free, physical, recent
    figures: dict[str, tuple[str, str, str, str, str, str]]
    pool_rows: list[PoolRow]


#: the last views prepared, newest first, with the history they were prepared with
_prepared: tuple[tuple[ClusterView, History | None, Prepared], ...] = ()


def prepare(view: ClusterView, history: History | None = None) -> Prepared:
    """The tables' figures of a view, made once. The backend makes them in the poll's thread
    right after it records the view: at 1,000 nodes they cost 30-60 ms (the pools' GPU memory
    medians over the history among them); the UI's update then only compares and draws. Two
    views are kept (a poll may end before the UI took the view before)."""
    global _prepared
    for known, known_history, found in _prepared:
        if known is view and known_history is history:
            return found
    labels = node_labels(view.nodes)
    figures = {
        node.node.node_id: (
            "head" if node.node.is_head else "",
            node.node.state,
            reserved_text(node.gpus_reserved, node.gpus_total),
            amount(node.gpus_free),
            physical_gpus(node),
            recent_use(node, history),
        )
        for node in view.nodes
    }
    found = Prepared(labels, figures, list(pool_rows(view, history)))
    _prepared = ((view, history, found), *_prepared[:1])
    return found


#: the node orders the sort key cycles through
SORTS = ("default", "free", "reserved", "name")


def matching_nodes(
    nodes: Iterable[NodeAllocation], text: str, labels: dict[str, str] | None = None
) -> list[NodeAllocation]:
    """Nodes whose label, role (`head`, `worker`), state or id contains `text`, ignoring case."""
    needle = text.lower().strip()
    found = []
    for node in nodes:
        label = (labels or {}).get(node.node.node_id) or node_label(node)
        role = "head" if node.node.is_head else "worker"
        fields = (label, role, node.node.state, node.node.node_id, node.node.ip)
        if not needle or any(needle in field.lower() for field in fields):
            found.append(node)
    return found


def sorted_nodes(nodes: list[NodeAllocation], sort: str) -> list[NodeAllocation]:
    """`default` keeps the dashboard's order with the head first; the others sort descending."""
    if sort == "free":
        return sorted(nodes, key=lambda node: -node.gpus_free)
    if sort == "reserved":
        return sorted(nodes, key=lambda node: -node.gpus_reserved)
    if sort == "name":
        return sorted(nodes, key=node_label)
    return sorted(nodes, key=lambda node: not node.node.is_head)


def recent_use(node: NodeAllocation, history: History | None) -> str:
    """The node's GPU utilisation over the last refreshes (NVML), else its GPUs reserved."""
    if history is None:
        return " " * SPARK_WIDTH
    busy = history.node(node.node.node_id, "gpu_utilization")
    if busy:
        return spark(busy, SPARK_WIDTH, top=100.0)
    return spark(history.node(node.node.node_id, "gpus_reserved"), SPARK_WIDTH,
                 top=node.gpus_total or None)  # fmt: skip


@lru_cache(maxsize=16)
def _state(state: str) -> Text:
    """One Text per state, shared by the rows in it (a refill then compares them by identity)."""
    return Text(state, style="green" if state == "ALIVE" else "bold red")
