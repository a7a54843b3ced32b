"""The Ray dashboard HTTP API: one session, short timeouts, auth, and plain payloads out.

Errors become one of three exceptions whose message is a sentence an operator can act on.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from openrag_tui import __version__
from openrag_tui.config import redact

if TYPE_CHECKING:
    import requests

TIMEOUT_SECONDS = 2.0
#: a 1,000-node summary is ~15 MB; more than this is not a dashboard answering
MAX_RESPONSE_BYTES = 64 << 20
READ_CHUNK_BYTES = 256 << 10
MAX_REDIRECTS = 3
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
    """Reads the dashboard; thread-safe for the parallel GETs of one refresh.

    Every request is bounded as a whole: `timeout` seconds from the first byte sent to the last
    byte read (a server trickling an endless body cannot hold a refresh) and MAX_RESPONSE_BYTES.
    A redirect is followed only to the same scheme, host and port. Messages name the URL with
    its credentials masked."""

    def __init__(
        self, base_url: str, token: str | None = None, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.display_url = redact(self.base_url)
        self.timeout = timeout
        import requests  # here: the panel draws its first frame without it (~0.15 s)

        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=len(ENDPOINTS))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = USER_AGENT
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        _read_environment_once(self._session, self.base_url, with_netrc=not token)
        self._started: dict[str, Future[Any]] | None = None  # GETs `prefetch` started

    def close(self) -> None:
        self._session.close()

    def get_json(self, path: str) -> Any:
        """GET a path and decode it, turning every failure into a DashboardError."""
        body = self._get(path)
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as error:
            raise DashboardError(f"{self.display_url}{path} did not return JSON") from error

    def healthy(self) -> bool:
        """GCS liveness, the dashboard's cheap `gcs_healthz` (not `ray status`: ~41 s to fail)."""
        try:
            return self._get("/api/gcs_healthz").strip() == b"success"
        except DashboardError:
            return False

    def prefetch(self, names: tuple[str, ...] = tuple(ENDPOINTS)) -> None:
        """Start the GETs of `fetch_all(names)` now and return: the next `fetch_all` of the same
        names waits for them. The CLI imports the view's modules while the dashboard answers."""
        self._started = self._submit(names)

    def fetch_all(self, names: tuple[str, ...] = tuple(ENDPOINTS)) -> dict[str, Any]:
        """Fetch the named endpoints in parallel: required ones raise, optional ones are omitted."""
        futures, self._started = self._started, None
        if futures is None or tuple(futures) != names:
            futures = self._submit(names)
        wait(futures.values())  # every GET has ended before this returns or raises
        payloads: dict[str, Any] = {}
        for name, future in futures.items():
            try:
                payloads[name] = future.result()
            except DashboardError:
                if name in REQUIRED:
                    raise
        return payloads

    def _submit(self, names: tuple[str, ...]) -> dict[str, Future[Any]]:
        """One thread per endpoint; they end with their GETs (bounded by `timeout`)."""
        pool = ThreadPoolExecutor(max_workers=len(names))
        futures = {name: pool.submit(self.get_json, ENDPOINTS[name]) for name in names}
        pool.shutdown(wait=False)
        return futures

    def _get(self, path: str) -> bytes:
        """The body of a GET, within the time and size bounds, after same-origin redirects."""
        deadline = time.monotonic() + self.timeout
        url = f"{self.base_url}{path}"
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(url, deadline)
            try:
                if response.is_redirect:
                    url = self._redirect_target(url, response)
                    continue
                self._check(response)
                return self._read(response, deadline)
            finally:
                response.close()
        raise DashboardError(f"{self.display_url} redirected more than {MAX_REDIRECTS} times")

    def _send(self, url: str, deadline: float) -> requests.Response:
        """The network round trip, with transport failures as DashboardErrors."""
        import requests

        left = max(deadline - time.monotonic(), 0.01)
        try:
            return self._session.get(url, timeout=left, stream=True, allow_redirects=False)
        except requests.Timeout as error:
            raise self._too_slow() from error
        except requests.ConnectionError as error:
            raise DashboardUnreachable(
                f"cannot reach the Ray dashboard at {self.display_url} (is the cluster running?)"
            ) from error
        except requests.RequestException as error:
            raise DashboardError(f"request to {redact(url)} failed: {error}") from error

    def _read(self, response: requests.Response, deadline: float) -> bytes:
        import requests

        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise DashboardError(
                        f"the Ray dashboard at {self.display_url} sent more than "
                        f"{MAX_RESPONSE_BYTES >> 20} MiB for {redact(response.url)}: refused"
                    )
                if time.monotonic() > deadline:
                    raise self._too_slow()
                chunks.append(chunk)
        except requests.RequestException as error:
            raise DashboardUnreachable(
                f"the Ray dashboard at {self.display_url} broke off its answer: {error}"
            ) from error
        return b"".join(chunks)

    def _redirect_target(self, url: str, response: requests.Response) -> str:
        target = urljoin(url, response.headers.get("Location", ""))
        here, there = urlsplit(url), urlsplit(target)
        if (here.scheme, here.hostname, here.port) != (there.scheme, there.hostname, there.port):
            raise DashboardError(
                f"the Ray dashboard at {self.display_url} redirected to {redact(target)}, "
                "another host: refused"
            )
        return target

    def _too_slow(self) -> DashboardUnreachable:
        return DashboardUnreachable(
            f"the Ray dashboard at {self.display_url} did not answer within {self.timeout:g}s"
        )

    def _check(self, response: requests.Response) -> None:
        """HTTP errors as DashboardErrors; 401/403 say how to provide the token."""
        if response.status_code == 401:
            raise DashboardAuthError(
                f"the Ray dashboard at {self.display_url} requires a token: {TOKEN_HELP}"
            )
        if response.status_code == 403:
            raise DashboardAuthError(
                f"the Ray dashboard at {self.display_url} refused the token: {TOKEN_HELP}"
            )
        if response.status_code >= 400:
            raise DashboardError(f"{redact(response.url)} answered HTTP {response.status_code}")


def _read_environment_once(session: requests.Session, base_url: str, with_netrc: bool) -> None:
    """What requests looks up in the environment for every request (the proxy variables, a
    `.netrc` file, a CA bundle named by REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE), looked up once
    for the dashboard: a panel polls seven GETs every few seconds, and those lookups were a
    fifth of each GET's CPU. Redirects stay on the same origin, so one lookup holds."""
    import requests.utils

    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    if with_netrc:
        session.auth = requests.utils.get_netrc_auth(base_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
