"""The nodes and pools tables: DataTables refilled from each ClusterView, keeping the cursor."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.widgets import DataTable

from openrag_tui.cluster.allocation import ClusterView, NodeAllocation
from openrag_tui.render import (
    amount,
    concurrency_text,
    fits_text,
    gpu_bar,
    node_label,
    physical_gpus,
)


class _RefillingTable(DataTable):
    """A row-cursor table whose rows are replaced wholesale, cursor kept on the same key.

    Columns have fixed widths: the layout fits 80 columns, and a header sized on one refresh
    never disagrees with rows sized on the next.
    """

    COLUMNS: Sequence[tuple[str, int]] = ()

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.cursor_foreground_priority = "renderable"  # keep the GPU bar's colours on the cursor
        self.zebra_stripes = False
        for label, width in self.COLUMNS:
            self.add_column(label, width=width)

    def refill(self, rows: Iterable[tuple[str, Sequence[str | Text]]]) -> None:
        selected = self._selected_key()
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if selected is not None and selected in self.rows:
            self.move_cursor(row=self.get_row_index(selected), animate=False)

    def _selected_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value


class NodesTable(_RefillingTable):
    COLUMNS = (
        ("node", 18),
        ("", 4),
        ("state", 5),
        ("GPU", 12),
        ("reserved", 8),
        ("free", 4),
        ("physical", 12),
    )

    def show(self, view: ClusterView, filter_text: str = "", sort: str = "default") -> None:
        self.refill(
            (
                node.node.node_id,
                (
                    node_label(node),
                    "head" if node.node.is_head else "",
                    _state(node.node.state),
                    gpu_bar(node),
                    f"{amount(node.gpus_reserved)}/{amount(node.gpus_total)}",
                    amount(node.gpus_free),
                    physical_gpus(node),
                ),
            )
            for node in sorted_nodes(matching_nodes(view.nodes, filter_text), sort)
        )


class PoolsTable(_RefillingTable):
    COLUMNS = (
        ("pool", 7),
        ("target", 6),
        ("alive", 5),
        ("pend", 4),
        ("GPU/actor", 9),
        ("reserved", 8),
        ("fits", 4),
        ("slots", 14),
    )

    def show(self, view: ClusterView) -> None:
        self.refill(
            (
                pool.name,
                (
                    pool.name,
                    str(pool.target),
                    str(pool.alive),
                    Text(str(pool.pending), style="yellow" if pool.pending else ""),
                    amount(pool.gpus_per_actor),
                    f"{amount(pool.gpus_reserved)}/{amount(pool.gpus_target)}",
                    fits_text(pool.fits_more),
                    concurrency_text(pool),
                ),
            )
            for pool in view.pools
        )


#: the node orders the sort key cycles through
SORTS = ("default", "free", "reserved", "name")


def matching_nodes(nodes: Iterable[NodeAllocation], text: str) -> list[NodeAllocation]:
    """Nodes whose host, IP, state or id contains `text` (case-insensitive)."""
    needle = text.lower()
    return [
        node
        for node in nodes
        if not needle
        or any(
            needle in field.lower()
            for field in (node_label(node), node.node.state, node.node.node_id)
        )
    ]


def sorted_nodes(nodes: list[NodeAllocation], sort: str) -> list[NodeAllocation]:
    """`default` keeps the dashboard's order with the head first; the others sort descending."""
    if sort == "free":
        return sorted(nodes, key=lambda node: -node.gpus_free)
    if sort == "reserved":
        return sorted(nodes, key=lambda node: -node.gpus_reserved)
    if sort == "name":
        return sorted(nodes, key=node_label)
    return sorted(nodes, key=lambda node: not node.node.is_head)


def _state(state: str) -> Text:
    return Text(state, style="green" if state == "ALIVE" else "bold red")
