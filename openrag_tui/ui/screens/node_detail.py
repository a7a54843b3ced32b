"""Enter on a node: its GPUs (logical slots, physical devices), their last minutes, and the
actors on it with the GPU memory each holds."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from openrag_tui.cluster.allocation import ClusterView, NodeAllocation
from openrag_tui.cluster.gpumemory import MEASURED, NO_GPU, NOT_GPU, ActorGpuMemory
from openrag_tui.cluster.history import History
from openrag_tui.formats import DASH, plain
from openrag_tui.render import amount, gigabytes, gpu_bar, node_label, spark
from openrag_tui.ui.screens.base import PanelModal

CHART_WIDTH = 48
#: (history metric, label, unit) of the node's charts
CHARTS = (
    ("gpu_utilization", "GPU use", "%"),
    ("gpu_memory_mib", "GPU memory", "G"),
    ("gpus_reserved", "reserved", " GPU"),
)


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


def chart_label(label: str, values: list[float], unit: str) -> str:
    """`GPU use 41%` with the latest sample, or `no samples yet`."""
    if not values:
        return f"{label:<11}{DASH}"
    last = values[-1]
    figure = gigabytes(last) if unit == "G" else amount(round(last, 2))
    return f"{label:<11}{figure}{unit}"


def devices_cell(memory: ActorGpuMemory | None) -> str:
    """The GPUs its process is on: `0`, `0,1`; `none` when it reserves one and is on none."""
    if memory is None or memory.status == NOT_GPU:
        return DASH
    if memory.status == NO_GPU:
        return "none"
    return ",".join(map(str, memory.devices)) or "?"


def memory_cell(memory: ActorGpuMemory | None, history: History | None) -> str:
    """GPU memory it holds now / its max over the history, `?` when NVML does not say."""
    if memory is None or memory.status == NOT_GPU:
        return DASH
    if memory.status != MEASURED or memory.memory_mib is None:
        return "0" if memory.status == NO_GPU else "?"
    found = history.actor_memory(memory.actor_id) if history else None
    most = max(found[1], memory.memory_mib) if found else memory.memory_mib
    return f"{gigabytes(memory.memory_mib)}/{gigabytes(most)}G"


class NodeDetailScreen(PanelModal):
    """A snapshot of one node at the moment it was opened."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close", id="node-close"),
        Binding("l", "logs", "Logs", id="node-logs"),
    ]

    def __init__(
        self, node: NodeAllocation, view: ClusterView | None = None, history: History | None = None
    ) -> None:
        super().__init__()
        self.node = node
        self.memory = view.gpu_memory if view else {}
        self.history = history

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
            yield Static(self._charts(), id="node-charts")
            yield DataTable(id="node-actors", cursor_type="row", zebra_stripes=False)
            yield Static("[dim]l: the selected actor's log   esc: close[/]")

    def _charts(self) -> Text:
        """A sparkline per figure, one glyph per refresh, the newest on the right."""
        text = Text()
        for metric, label, unit in CHARTS:
            values = self.history.node(self.node.node.node_id, metric) if self.history else []
            memory = sum(d.memory_total_mib for d in self.node.node.gpu_devices)
            top = {"%": 100.0, " GPU": self.node.gpus_total, "G": memory}[unit]
            text.append(f"{chart_label(label, values, unit):<18}")
            text.append(spark(values, CHART_WIDTH, top=top or None), style="cyan")
            text.append("\n")
        text.append(f"last {self.history.minutes:g} min" if self.history else "", style="dim")
        return text

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, width in (("class", None), ("name", None), ("pool", None), ("GPU", None),
                             ("on", None), ("mem", None)):  # fmt: skip
            table.add_column(label, width=width)
        for actor in self.node.actors:
            memory = self.memory.get(actor.actor_id)
            table.add_row(
                plain(actor.class_name),
                plain(actor.name or actor.actor_id[:8]),
                actor.pool or "other",
                amount(actor.gpus),
                devices_cell(memory),
                memory_cell(memory, self.history),
                key=actor.actor_id,
            )

    def action_logs(self) -> None:
        """The log of the actor under the cursor (by name where it has one)."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        actor_id = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        actor = next((a for a in self.node.actors if a.actor_id == actor_id), None)
        if actor is not None:
            from openrag_tui.ui.screens.logs import LogsScreen

            self.app.push_screen(LogsScreen([actor.name or actor.actor_id]))
