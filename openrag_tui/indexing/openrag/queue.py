"""OpenRAG's queue as `status`, `batches` and the panel show it: its slots and tasks from
`/queue/info` (or why not: unreachable, or the token may not read it), our files in flight
there (from the ledger), and the limit back-pressure keeps.

Cheap and bounded: one request with a short timeout, never raising.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openrag_tui.config import Settings, redact
from openrag_tui.indexing.ledger import LedgerError, LedgerReader
from openrag_tui.indexing.openrag.client import Down, OpenRag, QueueInfo, Refused, token_of
from openrag_tui.indexing.paths import Where

TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class OpenRagQueue:
    url: str
    reachable: bool
    forbidden: bool  # it answers, but the token may not read /queue/info
    error: str | None
    info: QueueInfo | None
    in_flight: int  # our files uploading or inside OpenRAG (the ledger's count)
    limit: int  # the most of ours allowed in flight now: the slots others' tasks leave free
    limit_source: str  # "queue/info" or ".env"

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "reachable": self.reachable,
            "forbidden": self.forbidden,
            "error": self.error,
            "queue": None if self.info is None else self.info.to_dict(),
            "in_flight": self.in_flight,
            "limit": self.limit,
            "limit_source": self.limit_source,
        }


def wanted(settings: Settings, where: Where | None) -> bool:
    """Whether to show OpenRAG's queue: the .env names OpenRAG or targets it, or a batch went
    there."""
    raw = settings.raw
    if settings.target == "openrag" or any(
        raw.get(key) for key in ("OPENRAG_TUI_OPENRAG_URL", "APP_URL", "APP_PORT")
    ):
        return True
    return bool(where and _in_flight(where) is not None and _had_batches(where))


def openrag_queue(
    settings: Settings, where: Where | None, env_file: str | None = None
) -> OpenRagQueue:
    """Never raises: an unreachable OpenRAG is a status, with its reason."""
    url = settings.openrag_api
    fallback = settings.ray_pool_size * settings.ray_max_tasks_per_worker
    ours = (_in_flight(where) or 0) if where is not None else 0
    client = OpenRag(url, token_of(env_file) or settings.auth_token, timeout=TIMEOUT_SECONDS)
    shown = redact(url)
    try:
        info = client.queue_info()
    except Refused as refused:  # 403: a token without the admin role; 401: a wrong token
        forbidden = refused.status == 403
        return OpenRagQueue(shown, True, forbidden, refused.reason, None, ours, fallback, ".env")
    except Down as down:
        return OpenRagQueue(shown, False, False, down.reason, None, ours, fallback, ".env")
    others = max(0, info.active - ours)  # tasks of other uploaders hold slots too
    limit = max(0, info.total_slots - others)
    return OpenRagQueue(shown, True, False, None, info, ours, limit, "queue/info")


def _in_flight(where: Where) -> int | None:
    try:
        return LedgerReader(where.ledger).openrag_in_flight()
    except LedgerError:
        return None


def _had_batches(where: Where) -> bool:
    try:
        return LedgerReader(where.ledger).has_target("openrag")
    except LedgerError:
        return False
