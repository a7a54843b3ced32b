"""A DashboardClient that answers from recorded payloads instead of the network.

Only the HTTP GET is replaced: decoding, required/optional handling and errors run as in
production. Used where a test needs a fixed cluster (snapshots) rather than a live one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from openrag_tui.cluster.dashboard import ENDPOINTS, Answer, DashboardClient

RECORDED = Path(__file__).resolve().parents[1] / "data" / "recorded"
FIXED_URL = "http://127.0.0.1:8265"


def load_recorded(folder: Path = RECORDED) -> dict[str, Any]:
    """Every recorded payload by endpoint name."""
    return {
        name: json.loads((folder / f"{name}.json").read_text())
        for name in ENDPOINTS
        if (folder / f"{name}.json").exists()
    }


class RecordedDashboard(DashboardClient):
    """Serves `payloads` (endpoint name -> body); a name it lacks answers 404."""

    def __init__(
        self,
        payloads: Mapping[str, Any] | None = None,
        url: str = FIXED_URL,
        logs: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        super().__init__(url)
        self.payloads = dict(load_recorded() if payloads is None else payloads)
        #: (actor id, "out" | "err") -> the log's text, served as Ray's /api/v0/logs/file does
        #: (the raw bytes; a log it lacks: 500 and Ray's sentence)
        self.logs = dict(logs or {})
        self.requests: list[str] = []

    def _send(self, url: str, deadline: float) -> Answer:
        path = url.removeprefix(self.base_url)
        self.requests.append(path)
        names = {endpoint: name for name, endpoint in ENDPOINTS.items()}
        if path == "/api/gcs_healthz":
            status, body = 200, b"success"
        elif path.startswith("/api/v0/logs/file?"):
            query = parse_qs(path.partition("?")[2])
            text = self.logs.get((query["actor_id"][0], query["suffix"][0]))
            if text is None:
                status = 500
                body = b"Could not find a log file. Please make sure the log exists."
            else:
                lines = int(query.get("lines", ["1000"])[0])
                status, body = 200, "".join(text.splitlines(True)[-lines:]).encode()
        elif path in names and names[path] in self.payloads:
            status, body = 200, json.dumps(self.payloads[names[path]]).encode()
        else:
            status, body = 404, b"{}"
        return Answer(url, status, {}, io.BytesIO(body))


def recorded_factory(**kwargs: Any) -> Callable[[Any], RecordedDashboard]:
    """A client_factory for make_app() that serves the recorded cluster."""
    return lambda _workspace: RecordedDashboard(**kwargs)
