"""One refresh, the walk DESIGN.md describes: fetch payloads, parse, compute allocation."""

from __future__ import annotations

import time
from collections.abc import Callable

from openrag_tui.cluster.allocation import ClusterView, build_view, pool_targets
from openrag_tui.cluster.dashboard import DashboardClient
from openrag_tui.cluster.state import parse
from openrag_tui.config import Settings

#: data older than this many refresh intervals is shown as stale
STALE_AFTER_INTERVALS = 3


def read_view(
    client: DashboardClient, settings: Settings, clock: Callable[[], float] = time.time
) -> ClusterView:
    """The cluster as the dashboard sees it now, measured against the .env's pools."""
    payloads = client.fetch_all()
    fetched_at = clock()
    return build_view(
        parse(payloads, fetched_at=fetched_at),
        pool_targets(settings),
        now=fetched_at,
        stale_after=STALE_AFTER_INTERVALS * settings.refresh_seconds,
    )
