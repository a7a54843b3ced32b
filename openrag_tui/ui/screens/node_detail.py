"""Enter on a node: its GPUs (logical slots, physical devices) and the actors on it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from openrag_tui.cluster.allocation import NodeAllocation
from openrag_tui.formats import plain
from openrag_tui.render import amount, gpu_bar, node_label
from openrag_tui.ui.screens.base import PanelModal


def slots_text(node: NodeAllocation) -> Text:
    """Reserved share of each GPU, as Ray's packing most likely placed it (an estimate)."""
    text = Text()
    for index, reserved in enumerate(node.gpu_slots):
        text.append(f"GPU{index} {amount(reserved)}/1  ")
    return text


def devices_text(node: NodeAllocation) -> Text:
    if not node.node.gpu_devices:
        return Text("no NVML data: GPUs are declared, not physical", style="dim")
    text = Text()
    for device in node.node.gpu_devices:
        util = "" if device.utilization is None else f" {device.utilization:.0f}%"
        text.append_text(
            plain(
                f"GPU{device.index} {device.name}: {device.memory_used_mib / 1024:.1f}/"
                f"{device.memory_total_mib / 1024:.0f} GiB{util}"
            )
        ).append("\n")
    return text


class NodeDetailScreen(PanelModal):
    """A snapshot of one node at the moment it was opened."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="node-close"),
    ]

    def __init__(self, node: NodeAllocation) -> None:
        super().__init__()
        self.node = node

    def compose(self) -> ComposeResult:
        node = self.node
        head = " (head)" if node.node.is_head else ""
        summary = Text.assemble(
            (f"{node_label(node)}{head}", "bold"),
            plain(f"  {node.node.state}  {node.node.node_id[:12]}"),
            "\n",
            gpu_bar(node, width=24),
            f"  {amount(node.gpus_reserved)}/{amount(node.gpus_total)} reserved, "
            f"{amount(node.gpus_free)} free\n",
            slots_text(node),
            " (estimated placement)\n",
            devices_text(node),
        )
        with Vertical(id="dialog"):
            yield Static(summary, id="node-summary")
            yield DataTable(id="node-actors", cursor_type="row", zebra_stripes=False)
            yield Static("[dim]esc: close[/]")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, width in (("class", 20), ("name", 18), ("pool", 7), ("state", 8), ("GPU", 5)):
            table.add_column(label, width=width)
        for actor in self.node.actors:
            table.add_row(
                plain(actor.class_name),
                plain(actor.name or actor.actor_id[:8]),
                actor.pool or "other",
                plain(actor.state),
                amount(actor.gpus),
                key=actor.actor_id,
            )
