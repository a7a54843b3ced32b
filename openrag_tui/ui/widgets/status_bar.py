"""The top line: where the data comes from, how healthy and how fresh it is, and what mode the
panel is in. On a narrow terminal the least telling parts go first (the URL, Ray's version);
STALE, PAUSED, READ-ONLY and errors are the last to go, and a part is dropped whole, never cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text

from openrag_tui.formats import plain
from openrag_tui.ui.widgets.fitted import FittedLine, Part, fit

if TYPE_CHECKING:
    from openrag_tui.cluster.allocation import ClusterView

SEPARATOR = " │ "


@dataclass(frozen=True)
class Freshness:
    """What the status bar needs to say about the last refresh."""

    view: ClusterView | None
    now: float
    interval: float
    paused: bool = False
    failing: bool = False
    read_only: bool = False

    @property
    def age(self) -> float | None:
        return None if self.view is None else max(0.0, self.now - self.view.state.fetched_at)

    @property
    def stale(self) -> bool:
        from openrag_tui.cluster.refresh import STALE_AFTER_INTERVALS  # with the first view

        age = self.age
        return self.failing or (age is not None and age > STALE_AFTER_INTERVALS * self.interval)


def status_parts(url: str, freshness: Freshness) -> list[Part]:
    view = freshness.view
    parts = [Part(plain(url, "bold"), 1)]
    if view is None:
        label = "● unreachable" if freshness.failing else "connecting…"
        parts.append(Part(Text(label, style="red" if freshness.failing else "dim"), 8))
    else:
        alive = sum(1 for node in view.nodes if node.node.state == "ALIVE")
        parts.append(Part(plain(f"Ray {view.state.ray_version}"), 2))
        if freshness.failing:
            parts.append(Part(Text("● unreachable", style="red"), 8))
        else:
            parts.append(Part(Text("● healthy", style="green"), 4))
        parts.append(Part(Text(f"{alive}/{len(view.nodes)} nodes"), 3))
        age = f"{freshness.age:.0f}s ago"
        if freshness.stale:
            parts.append(Part(Text(f"STALE {age}", style="bold reverse yellow"), 9))
        else:
            parts.append(Part(Text(f"updated {age}", style="dim"), 5))
    if freshness.paused:
        parts.append(Part(Text("PAUSED", style="bold reverse"), 10))
    if freshness.read_only:
        parts.append(Part(Text("READ-ONLY", style="bold reverse magenta"), 10))
    return parts


def status_text(url: str, freshness: Freshness, width: int = 200) -> Text:
    """`URL │ Ray 2.60.0 │ ● healthy │ 2/2 nodes │ updated 3s ago │ PAUSED`, fitted to `width`."""
    return fit(status_parts(url, freshness), width, SEPARATOR)


class StatusBar(FittedLine):
    """One line; the screen calls `show_status` after every refresh and every second."""

    DEFAULT_CSS = "StatusBar { height: 1; }"
    SEPARATOR = SEPARATOR

    def show_status(self, url: str, freshness: Freshness) -> None:
        self.show(status_parts(url, freshness))
