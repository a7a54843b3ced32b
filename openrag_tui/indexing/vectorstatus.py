"""The vector store as `status` and the panel show it: reachable or not (and why), the
collection, and chunks per partition.

Fast by design (a refresh must stay cheap, and pymilvus takes a second to import): whether the
server accepts connections, and the chunks the ledger records as written there (each document's
last completed write, unless forgotten). `search` and indexing talk to Milvus itself.
"""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from openrag_tui.config import Settings, redact
from openrag_tui.indexing.ledger import LedgerError, LedgerReader
from openrag_tui.indexing.paths import Where

TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class VectorStoreStatus:
    sink: str
    uri: str
    collection: str
    reachable: bool
    error: str | None = None
    chunks: int = 0
    partitions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vector_store_status(settings: Settings, where: Where | None) -> VectorStoreStatus:
    """Never raises: an unreachable store is a status, with its reason."""
    uri = redact(settings.vdb_uri)
    if settings.sink != "milvus":
        return VectorStoreStatus(
            "files", uri, settings.collection, False, "OPENRAG_TUI_SINK=files: no vector store"
        )
    parts = urlsplit(settings.vdb_uri)
    try:
        with socket.create_connection((parts.hostname, parts.port), TIMEOUT_SECONDS):
            error = None
    except OSError as failure:
        error = f"nothing answers ({failure.strerror or failure})"
    partitions: dict[str, int] = {}
    if where is not None:
        try:
            partitions = LedgerReader(where.ledger).indexed_chunks(settings.collection)
        except LedgerError:
            partitions = {}
    return VectorStoreStatus(
        "milvus", uri, settings.collection, error is None, error, sum(partitions.values()),
        partitions,
    )  # fmt: skip
