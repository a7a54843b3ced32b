"""The nodes and pools tables: refilled from each ClusterView, keeping the cursor.

Figures size their columns to their content (never cut); only the node's name has a fixed
width, and a long one loses its middle.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text

from openrag_tui.cluster.allocation import ClusterView, NodeAllocation
from openrag_tui.formats import shorten_middle
from openrag_tui.render import (
    amount,
    gpu_bar,
    node_label,
    node_labels,
    physical_gpus,
    pool_rows,
    reserved_text,
)
from openrag_tui.ui.widgets.table import KeyedTable

NODE_WIDTH = (10, 40)  # the node's name shrinks within these to leave the figures whole
BAR_WIDTH = (6, 12)
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

    def show(self, view: ClusterView, filter_text: str = "", sort: str = "default") -> None:
        """The matching nodes; the name and the bar give up room first on a narrow screen."""
        labels = node_labels(view.nodes)
        nodes = sorted_nodes(matching_nodes(view.nodes, filter_text, labels), sort)
        figures = [
            (
                "head" if node.node.is_head else "",
                node.node.state,
                reserved_text(node.gpus_reserved, node.gpus_total),
                amount(node.gpus_free),
                physical_gpus(node),
            )
            for node in nodes
        ]
        widths = [max([len(label)] + [len(row[i]) for row in figures]) for i, label in
                  enumerate(("", "state", "reserved", "free", "physical"))]  # fmt: skip
        room = (self.size.width or 80) - sum(widths) - CELL_PADDING * len(self.COLUMNS) - 1
        bar = max(BAR_WIDTH[0], min(BAR_WIDTH[1], room - NODE_WIDTH[0]))
        name = max(NODE_WIDTH[0], min(NODE_WIDTH[1], room - bar))
        self.refill(
            (
                node.node.node_id,
                (
                    shorten_middle(labels[node.node.node_id], name),
                    head,
                    _state(state),
                    gpu_bar(node, width=bar),
                    reserved,
                    free,
                    physical,
                ),
            )
            for node, (head, state, reserved, free, physical) in zip(nodes, figures, strict=True)
        )


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

    def show(self, view: ClusterView) -> None:
        self.refill((row.key, row.cells) for row in pool_rows(view))

    @property
    def selected_pool(self) -> str | None:
        """The pool of the row under the cursor (OpenRAG's line belongs to its pool)."""
        key = self.selected_key
        return None if key is None else key.split(":")[0]


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


def _state(state: str) -> Text:
    return Text(state, style="green" if state == "ALIVE" else "bold red")
