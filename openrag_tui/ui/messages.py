"""Messages workers and the app post to screens (workers never touch widgets)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from openrag_tui.cluster.allocation import ClusterView


class ViewRead(Message):
    """A refresh finished with a new view of the cluster (`died`: who died since the last)."""

    def __init__(self, view: ClusterView, died: str | None = None) -> None:
        super().__init__()
        self.view = view
        self.died = died


class ReadFailed(Message):
    """A refresh failed: the dashboard did not answer, or refused us."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class EnvReloaded(Message):
    """The .env was read again (saved here, or edited elsewhere): settings may have changed."""


class ClusterChanged(Message):
    """Something changed the cluster (a start, a stop, a resize): poll now, not in a while."""
