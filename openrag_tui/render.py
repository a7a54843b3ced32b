"""Rich renderables of a ClusterView, shared by `status` and the panel's widgets.

Pools are told apart by glyph as well as colour, so the bar still reads with NO_COLOR. Names
that come from the cluster (hosts, actors, Ray's messages) are shown as plain text, never markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from openrag_tui.config.pools import FACTS, OPENRAG, OURS
from openrag_tui.formats import DASH, count, plain, safe

if TYPE_CHECKING:  # the panel draws its first frame before the cluster's modules load
    from openrag_tui.cluster.allocation import ClusterView, NodeAllocation, PoolStatus
    from openrag_tui.cluster.gpumemory import ActorGpuMemory
    from openrag_tui.cluster.history import History
    from openrag_tui.indexing.openrag.queue import OpenRagQueue
    from openrag_tui.indexing.vectorstatus import VectorStoreStatus

#: (reserved_by key, glyph, style) in the order the bar draws them
BAR_PARTS: tuple[tuple[str, str, str], ...] = (
    ("indexer", "█", "cyan"),
    ("marker", "▓", "magenta"),
    ("other", "▒", "yellow"),
)
FREE_GLYPH, FREE_STYLE = "░", "bright_black"
INVALID_MARK = "✗"
SPARK_GLYPHS = "▁▂▃▄▅▆▇█"


def amount(value: float) -> str:
    """A GPU amount short and exact enough for a table: 4, 0.5, 0.25, 0.125."""
    return f"{value:.4f}".rstrip("0").rstrip(".") if value else "0"


NO_GPU = "no GPU"


def gpu_bar(node: NodeAllocation, width: int = 12) -> Text:
    """The node's GPUs as one bar: indexer, marker, other, then free, scaled to `width` cells."""
    return bar_text(bar_parts(node), node.gpus_total, width)


def bar_parts(node: NodeAllocation) -> tuple[float, ...]:
    """All the bar shows of a node besides its GPUs: what each part reserved, in bar order."""
    return tuple(node.reserved_by.get(key, 0.0) for key, _, _ in BAR_PARTS)


def bar_width(total: float, width: int) -> int:
    """The cells `bar_text` takes, known without drawing it."""
    return width if total > 0 else max(width, len(NO_GPU))


def bar_text(parts: tuple[float, ...], total: float, width: int) -> Text:
    """The bar of `bar_parts` out of `total` GPUs, `width` cells."""
    bar = Text()
    if total <= 0:
        return bar.append(NO_GPU.ljust(width), style="dim")
    cells_used = 0
    for reserved, (_, glyph, style) in zip(parts, BAR_PARTS, strict=True):
        cells = round(reserved / total * width)
        if reserved > 0:
            cells = max(cells, 1)  # a reservation never disappears from the bar
        cells = min(cells, width - cells_used)
        bar.append(glyph * cells, style=style)
        cells_used += cells
    return bar.append(FREE_GLYPH * (width - cells_used), style=FREE_STYLE)


def bar_legend_parts() -> list[Text]:
    """`█ indexer`, `▓ marker`, `▒ other`, `░ free`: what each glyph of the bar is."""
    parts = [Text(f"{glyph} {key}", style=style) for key, glyph, style in BAR_PARTS]
    return [*parts, Text(f"{FREE_GLYPH} free", style=FREE_STYLE)]


def bar_legend() -> Text:
    return Text("  ").join(bar_legend_parts())


def node_label(node: NodeAllocation) -> str:
    name = safe(node.node.hostname or node.node.ip)
    return f"{name} ({node.node.ip})" if node.node.ip and name != node.node.ip else name


def node_labels(nodes: Iterable[NodeAllocation]) -> dict[str, str]:
    """Each node's label by id; where hosts and IPs repeat (nodes on one machine), the start
    of the node id tells them apart."""
    found = list(nodes)
    labels = {node.node.node_id: node_label(node) for node in found}
    repeated = Counter(labels.values())
    return {
        node_id: f"{label} {node_id[:6]}" if repeated[label] > 1 else label
        for node_id, label in labels.items()
    }


def physical_gpus(node: NodeAllocation) -> str:
    """NVML figures when the node reports them; declared-only GPUs have none."""
    devices = node.node.gpu_devices
    if not devices:
        return DASH
    used = sum(device.memory_used_mib for device in devices) / 1024
    total = sum(device.memory_total_mib for device in devices) / 1024
    utilizations = [device.utilization for device in devices if device.utilization is not None]
    util = f" {sum(utilizations) / len(utilizations):.0f}%" if utilizations else ""
    return f"{used:.0f}/{total:.0f}G{util}"


def spark(values: Sequence[float], width: int, top: float | None = None) -> str:
    """The last `width` samples as bar heights from 0 to `top` (their max by default), right
    aligned: glyphs, not colours, so it reads with NO_COLOR."""
    recent = list(values)[-width:]
    if not recent:
        return " " * width
    ceiling = top or max(recent) or 1.0
    steps = len(SPARK_GLYPHS) - 1
    glyphs = (SPARK_GLYPHS[max(0, min(steps, round(value / ceiling * steps)))] for value in recent)
    return "".join(glyphs).rjust(width)


def gigabytes(mib: float) -> str:
    """MiB as a short GiB figure: 0.8, 9.8, 12, 40."""
    value = mib / 1024
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def memory_text(entries: Iterable[ActorGpuMemory], history: History | None = None) -> str:
    """GPU memory one actor of a pool holds (`entries`: its actors'): median/max over the
    history (else now), and the share it reserves, e.g. `9.8/12 of 20G`; `?` when NVML does
    not say."""
    from openrag_tui.cluster.gpumemory import MEASURED, NOT_GPU
    from openrag_tui.cluster.history import summary

    gpu = [e for e in entries if e.status != NOT_GPU]
    if not gpu:
        return DASH
    measured = [e for e in gpu if e.status == MEASURED]
    found = history.pool_memory(e.actor_id for e in measured) if history else None
    found = found or summary([e.memory_mib for e in measured if e.memory_mib is not None])
    shares = [share for share in (e.share_mib for e in gpu) if share is not None]
    share = f" of {gigabytes(max(shares))}G" if shares else ""
    if found is None:
        return "?" + share
    median, most = found
    return f"{gigabytes(median)}/{gigabytes(most)}{share or 'G'}"


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


def reserved_text(reserved: float, total: float) -> str:
    return f"{amount(reserved)}/{amount(total)}"


def invalid_text(text: str) -> Text:
    """The .env's own text of a refused value, marked: never a default passed off as the file's."""
    return Text.assemble((safe(text), "bold red"), (INVALID_MARK, "bold red"))


@dataclass(frozen=True)
class PoolRow:
    """One line of the pools table: our pool (resizable from here) or OpenRAG's actors of it."""

    key: str
    pool: PoolStatus
    owner: str
    cells: tuple[str | Text, ...]


POOL_COLUMNS = (
    "pool", "target", "alive", "pend", "GPU/actor", "reserved", "fits", "slots", "mem/actor",
)  # fmt: skip


def pool_rows(view: ClusterView, history: History | None = None) -> Iterator[PoolRow]:
    """Each of our pools, and under it a line for OpenRAG's own actors of that pool when there
    are any (they hold GPUs too, but a resize from here does not touch them)."""
    owned: dict[tuple[str | None, str | None], list[ActorGpuMemory]] = {}
    for entry in view.gpu_memory.values():  # once: a big cluster has thousands
        owned.setdefault((entry.pool, entry.owner), []).append(entry)
    for pool in view.pools:
        memory = memory_text(owned.get((pool.name, OURS), ()), history)
        yield PoolRow(pool.name, pool, OURS, _our_cells(pool, memory))
        theirs = pool.openrags
        if theirs.alive or theirs.pending or theirs.restarting:
            cells = (
                "└ openrag",
                DASH,
                str(theirs.alive),
                str(theirs.pending),
                DASH,
                amount(theirs.gpus_reserved),
                "",
                "",
                memory_text(owned.get((pool.name, OPENRAG), ()), history),
            )
            yield PoolRow(f"{pool.name}:{OPENRAG}", pool, OPENRAG, cells)


def _our_cells(pool: PoolStatus, memory: str) -> tuple[str | Text, ...]:
    invalid = pool.invalid
    facts = FACTS[pool.name]

    def shown(key: str, text: str) -> str | Text:
        return invalid_text(invalid[key]) if key in invalid else text

    ours = pool.ours
    slots: str | Text = concurrency_text(pool)
    bad_slots = [key for key in facts.concurrency_keys if key in invalid]
    if bad_slots:
        slots = invalid_text(invalid[bad_slots[0]])
    return (
        pool.name,
        shown(facts.size_key, str(pool.target)),
        str(ours.alive),
        Text(str(ours.pending), style="yellow" if ours.pending else ""),
        shown(facts.gpus_key, amount(pool.gpus_per_actor)),
        reserved_text(ours.gpus_reserved, pool.gpus_target),
        fits_text(pool.fits_more),
        slots,
        memory,
    )


def nodes_table(view: ClusterView) -> Table:
    table = Table(title="Nodes", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("node", "", "state", "GPU", "reserved", "free", "physical"):
        table.add_column(column, no_wrap=True)
    labels = node_labels(view.nodes)
    for node in view.nodes:
        table.add_row(
            plain(labels[node.node.node_id]),
            "head" if node.node.is_head else "",
            plain(node.node.state),
            gpu_bar(node),
            reserved_text(node.gpus_reserved, node.gpus_total),
            amount(node.gpus_free),
            physical_gpus(node),
        )
    return table


def pools_table(view: ClusterView) -> Table:
    table = Table(title="Pools", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in POOL_COLUMNS[:-1]:  # the memory per actor has its own lines: 80 columns
        table.add_column(column, no_wrap=True)
    for row in pool_rows(view):
        table.add_row(*(plain(c) if isinstance(c, str) else c for c in row.cells[:-1]))
    return table


def memory_lines(view: ClusterView) -> Text | None:
    """`GPU memory per actor` (now, median/max, and the share reserved) for each pool row
    whose actors use a GPU; None when none does."""
    shown = [(row, row.cells[-1]) for row in pool_rows(view) if row.cells[-1] != DASH]
    if not shown:
        return None
    text = Text("GPU memory per actor", style="bold")
    for row, cell in shown:
        who = row.pool.name if row.owner == OURS else f"{row.pool.name} (OpenRAG's)"
        text.append(f"\n  {who}: {cell}")
    return text


def pending_lines(view: ClusterView) -> Text:
    text = Text()
    for pending in view.pending:
        style = "red" if pending.reason == "infeasible" else "yellow"
        who = pending.actor.name or pending.actor.actor_id[:8]
        text.append(f"{pending.reason:<11}", style=style)
        text.append(f" {safe(pending.actor.class_name)} {safe(who)}: {safe(pending.detail)}\n")
    return text


def warning_lines(view: ClusterView) -> Text:
    text = Text()
    for warning in view.warnings:
        text.append("! ", style="bold yellow").append(f"{safe(warning)}\n")
    return text


def vector_store_line(status: VectorStoreStatus) -> Text:
    """`vectors ✓ http://127.0.0.1:19530 openrag_tui: 1.2k chunks in 3 partitions`, or
    `vectors ✗ http://127.0.0.1:19530: nothing answers (Connection refused)`."""
    line = Text("vectors ", style="bold")
    if status.sink != "milvus":
        return line.append("none (OPENRAG_TUI_SINK=files)", style="dim")
    if not status.reachable:
        line.append("✗ ", style="bold red").append_text(plain(f"{status.uri}: "))
        return line.append_text(plain(status.error or "", "red"))
    line.append("✓ ", style="bold green")
    partitions = len(status.partitions)
    return line.append_text(
        plain(
            f"{status.uri} {status.collection}: {count(status.chunks)} chunks in {partitions} "
            f"partition{'' if partitions == 1 else 's'}"
        )
    )


def openrag_line(queue: OpenRagQueue) -> Text:
    """`openrag ✓ http://app:8080 8 slots, 3 active (SERIALIZING 2, QUEUED 1) · ours 3/5`,
    or why its queue cannot be read, and the limit back-pressure keeps then."""
    line = Text("openrag ", style="bold")
    ours = f"ours {queue.in_flight}/{queue.limit} in flight"
    if queue.info is None:
        if queue.forbidden:
            line.append("✓ ", style="bold yellow").append_text(plain(f"{queue.url}: "))
            line.append_text(plain("forbidden: the token may not read /queue/info", "yellow"))
        else:
            said = (queue.error or "") if queue.reachable else f"unreachable: {queue.error or ''}"
            line.append("✗ ", style="bold red").append_text(plain(f"{queue.url}: "))
            line.append_text(plain(said, "red"))
        limit = "RAY_POOL_SIZE × RAY_MAX_TASKS_PER_WORKER"
        return line.append_text(plain(f" · {ours} (limit {limit})", "dim"))
    info = queue.info
    states = ", ".join(f"{state} {n}" for state, n in sorted(info.active_statuses.items()) if n)
    line.append("✓ ", style="bold green")
    line.append_text(
        plain(
            f"{queue.url} {info.total_slots} slots, {info.active} active"
            + (f" ({states})" if states else "")
            + f" · {ours} · done {count(info.total_completed)}, failed "
            f"{count(info.total_failed)}"
        )
    )
    return line


def render_view(
    view: ClusterView,
    dashboard_url: str,
    vectors: VectorStoreStatus | None = None,
    openrag: OpenRagQueue | None = None,
) -> RenderableType:
    """The whole `status` report."""
    header = plain(f"{dashboard_url}  Ray {view.state.ray_version}  {len(view.nodes)} nodes")
    parts: list[RenderableType] = [header, nodes_table(view), bar_legend(), pools_table(view)]
    memory = memory_lines(view)
    if memory is not None:
        parts.append(memory)
    if vectors is not None:
        parts.append(vector_store_line(vectors))
    if openrag is not None:
        parts.append(openrag_line(openrag))
    if view.pending:
        parts += [Text("Pending actors", style="bold"), pending_lines(view)]
    if view.warnings:
        parts.append(warning_lines(view))
    return Group(*parts)
