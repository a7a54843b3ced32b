"""One refresh, the walk DESIGN.md describes: fetch payloads, parse, compute allocation."""

from __future__ import annotations

import time
from collections.abc import Callable

from openrag_tui.cluster.allocation import ClusterView, build_view
from openrag_tui.cluster.dashboard import ENDPOINTS, DashboardClient, DashboardError
from openrag_tui.cluster.state import ClusterState, UnreadableBody, parse
from openrag_tui.config import Settings
from openrag_tui.config.pools import pool_specs

#: data older than this many refresh intervals is shown as stale
STALE_AFTER_INTERVALS = 3


def read_state(
    client: DashboardClient,
    names: tuple[str, ...] = tuple(ENDPOINTS),
    clock: Callable[[], float] = time.time,
) -> ClusterState:
    """The named payloads fetched and parsed; a body of the wrong shape is one DashboardError."""
    payloads = client.fetch_all(names)
    try:
        return parse(payloads, fetched_at=clock())
    except UnreadableBody as error:
        raise DashboardError(f"the Ray dashboard at {client.display_url}: {error}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise DashboardError(
            f"the Ray dashboard at {client.display_url} answered with data of an unexpected "
            f"shape ({type(error).__name__}: {str(error)[:80]}): is it a Ray dashboard?"
        ) from None


def read_view(
    client: DashboardClient,
    settings: Settings,
    clock: Callable[[], float] = time.time,
    previous: ClusterState | None = None,
) -> ClusterView:
    """The cluster as the dashboard sees it now, measured against the .env's pools
    (`previous`: the last refresh's state, to tell what changed since)."""
    state = read_state(client, clock=clock)
    return build_view(
        state,
        pool_specs(settings),
        now=state.fetched_at,
        stale_after=STALE_AFTER_INTERVALS * settings.refresh_seconds,
        invalid=settings.invalid,
        previous=previous,
    )
