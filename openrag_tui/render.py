"""Rich renderables of a ClusterView, shared by `status` and the panel's widgets.

Pools are told apart by glyph as well as colour, so the bar still reads with NO_COLOR.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from openrag_tui.cluster.allocation import ClusterView, NodeAllocation, PoolStatus

#: (reserved_by key, glyph, style) in the order the bar draws them
BAR_PARTS: tuple[tuple[str, str, str], ...] = (
    ("indexer", "█", "cyan"),
    ("marker", "▓", "magenta"),
    ("other", "▒", "yellow"),
)
FREE_GLYPH, FREE_STYLE = "░", "bright_black"


def amount(value: float) -> str:
    """A GPU amount short and exact enough for a table: 4, 0.5, 0.25, 0.125."""
    return f"{value:.4f}".rstrip("0").rstrip(".") if value else "0"


def gpu_bar(node: NodeAllocation, width: int = 12) -> Text:
    """The node's GPUs as one bar: indexer, marker, other, then free, scaled to `width` cells."""
    bar = Text()
    if node.gpus_total <= 0:
        return bar.append("no GPU".ljust(width), style="dim")
    cells_used = 0
    for key, glyph, style in BAR_PARTS:
        reserved = node.reserved_by.get(key, 0.0)
        cells = round(reserved / node.gpus_total * width)
        if reserved > 0:
            cells = max(cells, 1)  # a reservation never disappears from the bar
        cells = min(cells, width - cells_used)
        bar.append(glyph * cells, style=style)
        cells_used += cells
    return bar.append(FREE_GLYPH * (width - cells_used), style=FREE_STYLE)


def bar_legend() -> Text:
    legend = Text()
    for key, glyph, style in BAR_PARTS:
        legend.append(f"{glyph} {key}  ", style=style)
    return legend.append(f"{FREE_GLYPH} free", style=FREE_STYLE)


def node_label(node: NodeAllocation) -> str:
    name = node.node.hostname or node.node.ip
    return f"{name} ({node.node.ip})" if node.node.ip and name != node.node.ip else name


def physical_gpus(node: NodeAllocation) -> str:
    """NVML figures when the node reports them; declared-only GPUs have none."""
    devices = node.node.gpu_devices
    if not devices:
        return "–"
    used = sum(device.memory_used_mib for device in devices) / 1024
    total = sum(device.memory_total_mib for device in devices) / 1024
    utilizations = [device.utilization for device in devices if device.utilization is not None]
    util = f" {sum(utilizations) / len(utilizations):.0f}%" if utilizations else ""
    return f"{used:.0f}/{total:.0f}G{util}"


def fits_text(fits: int | None) -> str:
    """How many more actors fit; None means nothing limits the pool (0 GPU, 0 CPU)."""
    return "+∞" if fits is None else f"+{fits}"


def concurrency_text(pool: PoolStatus) -> str:
    """Concurrent work per actor: indexer task slots; marker subprocesses (min, recycle after)."""
    settings = pool.concurrency
    if pool.name == "indexer":
        return f"{settings.get('max_tasks_per_worker', '?')} tasks"
    return (
        f"{settings.get('max_processes', '?')} procs "
        f"≥{settings.get('min_processes', '?')} ↻{settings.get('max_tasks_per_child', '?')}"
    )


def nodes_table(view: ClusterView) -> Table:
    table = Table(title="Nodes", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("node", "", "state", "GPU", "reserved", "free", "physical"):
        table.add_column(column, no_wrap=True)
    for node in view.nodes:
        table.add_row(
            node_label(node),
            "head" if node.node.is_head else "",
            node.node.state,
            gpu_bar(node),
            f"{amount(node.gpus_reserved)}/{amount(node.gpus_total)}",
            amount(node.gpus_free),
            physical_gpus(node),
        )
    return table


def pools_table(view: ClusterView) -> Table:
    table = Table(title="Pools", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("pool", "target", "alive", "pend", "GPU/actor", "reserved", "fits", "slots"):
        table.add_column(column, no_wrap=True)
    for pool in view.pools:
        table.add_row(
            pool.name,
            str(pool.target),
            str(pool.alive),
            str(pool.pending),
            amount(pool.gpus_per_actor),
            f"{amount(pool.gpus_reserved)}/{amount(pool.gpus_target)}",
            fits_text(pool.fits_more),
            concurrency_text(pool),
        )
    return table


def pending_lines(view: ClusterView) -> Text:
    text = Text()
    for pending in view.pending:
        style = "red" if pending.reason == "infeasible" else "yellow"
        who = pending.actor.name or pending.actor.actor_id[:8]
        text.append(f"{pending.reason:<11}", style=style)
        text.append(f" {pending.actor.class_name} {who}: {pending.detail}\n")
    return text


def warning_lines(view: ClusterView) -> Text:
    text = Text()
    for warning in view.warnings:
        text.append("! ", style="bold yellow").append(f"{warning}\n")
    return text


def render_view(view: ClusterView, dashboard_url: str) -> RenderableType:
    """The whole `status` report."""
    header = Text(f"{dashboard_url}  Ray {view.state.ray_version}  {len(view.nodes)} nodes")
    parts: list[RenderableType] = [header, nodes_table(view), bar_legend(), pools_table(view)]
    if view.pending:
        parts += [Text("Pending actors", style="bold"), pending_lines(view)]
    if view.warnings:
        parts.append(warning_lines(view))
    return Group(*parts)
