"""The top line: where the data comes from, how healthy and how fresh it is."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from openrag_tui.cluster.allocation import ClusterView
from openrag_tui.cluster.refresh import STALE_AFTER_INTERVALS

SEPARATOR = " │ "


@dataclass(frozen=True)
class Freshness:
    """What the status bar needs to say about the last refresh."""

    view: ClusterView | None
    now: float
    interval: float
    paused: bool = False
    failing: bool = False

    @property
    def age(self) -> float | None:
        return None if self.view is None else max(0.0, self.now - self.view.state.fetched_at)

    @property
    def stale(self) -> bool:
        age = self.age
        return self.failing or (age is not None and age > STALE_AFTER_INTERVALS * self.interval)


def status_text(url: str, freshness: Freshness) -> Text:
    """`URL │ Ray 2.60.0 │ ● healthy │ 2/2 nodes │ updated 3s ago`: fits in 80 columns."""
    view = freshness.view
    text = Text(url, style="bold")
    if view is None:
        label = "● unreachable" if freshness.failing else "connecting…"
        return text.append(SEPARATOR).append(label, style="red" if freshness.failing else "dim")
    alive = sum(1 for node in view.nodes if node.node.state == "ALIVE")
    health = ("● healthy", "green") if not freshness.failing else ("● unreachable", "red")
    text.append(f"{SEPARATOR}Ray {view.state.ray_version}{SEPARATOR}")
    text.append(health[0], style=health[1])
    text.append(f"{SEPARATOR}{alive}/{len(view.nodes)} nodes{SEPARATOR}")
    age = f"{freshness.age:.0f}s ago"
    if freshness.stale:
        text.append(f"STALE {age}", style="bold reverse yellow")
    else:
        text.append(f"updated {age}", style="dim")
    if freshness.paused:
        text.append(SEPARATOR).append("PAUSED", style="bold reverse")
    return text


class StatusBar(Static):
    """One line; the screen calls `show` after every refresh and every second."""

    def show(self, url: str, freshness: Freshness) -> None:
        self.update(status_text(url, freshness))
