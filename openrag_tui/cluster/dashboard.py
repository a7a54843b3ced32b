"""The Ray dashboard HTTP API: one session, short timeouts, auth, and plain payloads out.

Errors become one of three exceptions whose message is a sentence an operator can act on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from openrag_tui import __version__

TIMEOUT_SECONDS = 2.0
ACTOR_LIMIT = 10_000
USER_AGENT = (
    f"openrag-tui/{__version__} (python-requests)"  # never "Mozilla": browsers may only GET
)

#: endpoint name -> path. The names are the keys of the payload mapping `state.parse` reads.
ENDPOINTS: dict[str, str] = {
    "version": "/api/version",
    "nodes_detail": "/api/v0/nodes?detail=1",
    "actors_detail": f"/api/v0/actors?detail=1&limit={ACTOR_LIMIT}",
    "nodes_summary": "/nodes?view=summary",
    "cluster_status": "/api/cluster_status",
    "cluster_events": "/api/v0/cluster_events?limit=200",
    "placement_groups": f"/api/v0/placement_groups?detail=1&limit={ACTOR_LIMIT}",
}
REQUIRED = ("version", "nodes_detail", "actors_detail")

TOKEN_HELP = (
    "set RAY_AUTH_TOKEN, point RAY_AUTH_TOKEN_PATH at the token file, "
    "or put it in ~/.ray/auth_token"
)


class DashboardError(Exception):
    """The dashboard could not give us what we asked for."""


class DashboardUnreachable(DashboardError):
    """Nothing answered at the URL (refused, timed out, DNS)."""


class DashboardAuthError(DashboardError):
    """The dashboard wants a token, or refused ours."""


def default_dashboard_url(cli_url: str | None, panel_url: str | None, port: int) -> str:
    """`--dashboard URL` > the panel's own setting > `http://127.0.0.1:$RAY_DASHBOARD_PORT`."""
    url = cli_url or panel_url or f"http://127.0.0.1:{port}"
    return url.rstrip("/")


def load_token(environ: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """The dashboard token from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token."""
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return env["RAY_AUTH_TOKEN"].strip()
    candidates = []
    if env.get("RAY_AUTH_TOKEN_PATH"):
        candidates.append(Path(env["RAY_AUTH_TOKEN_PATH"]).expanduser())
    candidates.append((home or Path.home()) / ".ray" / "auth_token")
    for path in candidates:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if token:
            return token
    return None


class DashboardClient:
    """Reads the dashboard; thread-safe for the parallel GETs of one refresh."""

    def __init__(
        self, base_url: str, token: str | None = None, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=len(ENDPOINTS))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = USER_AGENT
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._session.close()

    def get_json(self, path: str) -> Any:
        """GET a path and decode it, turning every failure into a DashboardError."""
        response = self._get(path)
        try:
            return response.json()
        except ValueError as error:
            raise DashboardError(f"{self.base_url}{path} did not return JSON") from error

    def healthy(self) -> bool:
        """GCS liveness, the dashboard's cheap `gcs_healthz` (not `ray status`: ~41 s to fail)."""
        try:
            return self._get("/api/gcs_healthz").text.strip() == "success"
        except DashboardError:
            return False

    def fetch_all(self, names: tuple[str, ...] = tuple(ENDPOINTS)) -> dict[str, Any]:
        """Fetch the named endpoints in parallel: required ones raise, optional ones are omitted."""
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = {name: pool.submit(self.get_json, ENDPOINTS[name]) for name in names}
        payloads: dict[str, Any] = {}
        for name, future in futures.items():
            try:
                payloads[name] = future.result()
            except DashboardError:
                if name in REQUIRED:
                    raise
        return payloads

    def _get(self, path: str) -> requests.Response:
        return self._checked(self._send(path))

    def _send(self, path: str) -> requests.Response:
        """The network round trip, with transport failures as DashboardErrors."""
        url = f"{self.base_url}{path}"
        try:
            return self._session.get(url, timeout=self.timeout)
        except requests.Timeout as error:
            raise DashboardUnreachable(
                f"the Ray dashboard at {self.base_url} did not answer within {self.timeout:g}s"
            ) from error
        except requests.ConnectionError as error:
            raise DashboardUnreachable(
                f"cannot reach the Ray dashboard at {self.base_url} (is the cluster running?)"
            ) from error
        except requests.RequestException as error:
            raise DashboardError(f"request to {url} failed: {error}") from error

    def _checked(self, response: requests.Response) -> requests.Response:
        """HTTP errors as DashboardErrors; 401/403 say how to provide the token."""
        if response.status_code == 401:
            raise DashboardAuthError(
                f"the Ray dashboard at {self.base_url} requires a token: {TOKEN_HELP}"
            )
        if response.status_code == 403:
            raise DashboardAuthError(
                f"the Ray dashboard at {self.base_url} refused the token: {TOKEN_HELP}"
            )
        if response.status_code >= 400:
            raise DashboardError(f"{response.url} answered HTTP {response.status_code}")
        return response
