"""The Ray dashboard HTTP API: short timeouts, auth, and plain payloads out.

Errors become one of three exceptions whose message is a sentence an operator can act on.
The transport is the standard library's `urllib.request` (proxies from the environment,
HTTPS): `requests` and urllib3 took 70 of a `status --json`'s ~260 ms to import
(docs/benchmarks.md, "Issue 13, third day").
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urljoin, urlsplit

from openrag_tui import __version__
from openrag_tui.cluster.gcpause import gc_paused
from openrag_tui.config import redact

if TYPE_CHECKING:
    import ssl
    from urllib.request import OpenerDirector

    from openrag_tui.cluster.deadline import Deadline

TIMEOUT_SECONDS = 2.0
#: a 1,000-node summary is ~15 MB; more than this is not a dashboard answering
MAX_RESPONSE_BYTES = 64 << 20
READ_CHUNK_BYTES = 256 << 10
MAX_REDIRECTS = 3
ACTOR_LIMIT = 10_000
USER_AGENT = f"openrag-tui/{__version__} (python)"  # never "Mozilla": browsers may only GET
REDIRECTS = frozenset({301, 302, 303, 307, 308})

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
#: bodies `fetch_all` hands over as sent: `cluster.state` reads them straight into its own types
#: (only the fields it uses), a third to a half of the time decoding them to dicts first takes;
#: for 1,000 nodes, the actors' is 12 MB, the nodes' summary 2.3 MB
UNDECODED = frozenset({"actors_detail", "nodes_summary"})

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


class _Body(Protocol):
    def read1(self, size: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


class Answer:
    """One HTTP answer, its body not read yet (read it in bounded chunks, then close it)."""

    def __init__(self, url: str, status: int, headers: Mapping[str, str], body: _Body) -> None:
        self.url = url
        self.status = status
        self.headers = headers
        self._body = body

    @property
    def is_redirect(self) -> bool:
        return self.status in REDIRECTS and self.headers.get("Location") is not None

    def chunks(self, size: int) -> Iterator[bytes]:
        """The body as it arrives: each chunk is what one read gave, at most `size` bytes. A
        body that ends before its Content-Length raises IncompleteRead (`read1` just ends)."""
        while chunk := self._body.read1(size):
            yield chunk
        missing = getattr(self._body, "length", None)
        if missing:
            import http.client

            raise http.client.IncompleteRead(b"", missing)

    def close(self) -> None:
        self._body.close()


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


def decoded(body: bytes) -> Any:
    """A JSON body as Python values. Besides the UNDECODED ones, a 1,000-node cluster's bodies
    are 0.6 MB: orjson reads them in about half the time
    `json.loads` takes, with the cyclic GC paused as for the rest of a refresh
    (`cluster.gcpause`: it would scan them again and again). What orjson refuses (a lone
    surrogate, NaN, nesting past 1,024) goes to `json.loads`, which answers as it always did.
    One difference: an integer past 64 bits reads as a float."""
    import orjson  # `status --json` writes with it anyway

    with gc_paused():
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return json.loads(body)


class DashboardClient:
    """Reads the dashboard; thread-safe for the parallel GETs of one refresh.

    Every request is bounded as a whole: `timeout` seconds from the first byte sent to the last
    byte read (a server trickling an endless body cannot hold a refresh) and MAX_RESPONSE_BYTES.
    A redirect is followed only to the same scheme, host and port. Messages name the URL with
    its credentials masked."""

    def __init__(
        self, base_url: str, token: str | None = None, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        base_url = base_url.rstrip("/")
        self.display_url = redact(base_url)
        #: the URL without its credentials (`user:password@`): they go in a header, never in a
        #: request line, a Host header or a name lookup
        self.base_url, login = _without_credentials(base_url)
        self.timeout = timeout
        #: what every request carries: the agent, and the token, the URL's login or `.netrc`'s
        self.headers = {"User-Agent": USER_AGENT}
        if token:
            authorization: str | None = f"Bearer {token}"
        elif login is not None:
            authorization = _basic(*login)
        else:
            authorization = _netrc_login(self.base_url)
        if authorization:
            self.headers["Authorization"] = authorization
        #: a token with a line break: http.client would refuse it with the token in the sentence
        self._unsendable = bool(token) and any(char in token for char in "\r\n\0")
        self._started: dict[str, Future[Any]] | None = None  # GETs `prefetch` started

    def close(self) -> None:
        """Nothing to release: each GET has its own connection, closed when it is read."""

    @cached_property
    def _opener(self) -> OpenerDirector:
        """Built at the first GET (a bad CA bundle is then that GET's DashboardError)."""
        return _opener_for(self.base_url)

    def get_json(self, path: str) -> Any:
        """GET a path and decode it, turning every failure into a DashboardError."""
        body = self._get(path)
        try:
            return decoded(body)
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
        """Fetch the named endpoints in parallel: required ones raise, optional ones are omitted;
        the UNDECODED ones are their bodies as sent."""
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
        futures = {
            name: pool.submit(self._get if name in UNDECODED else self.get_json, ENDPOINTS[name])
            for name in names
        }
        pool.shutdown(wait=False)
        return futures

    def _get(self, path: str) -> bytes:
        """The body of a GET, within the time and size bounds, after same-origin redirects."""
        with self._bounded(self.timeout) as bound:
            url = f"{self.base_url}{path}"
            for _ in range(MAX_REDIRECTS + 1):
                response = self._send(url, bound)
                try:
                    if response.is_redirect:
                        url = self._redirect_target(url, response)
                        continue
                    self._check(response)
                    return self._read(response)
                finally:
                    bound.forget()
                    response.close()
            raise DashboardError(f"{self.display_url} redirected more than {MAX_REDIRECTS} times")

    @contextmanager
    def _bounded(self, seconds: float) -> Iterator[Deadline]:
        """One exchange (its sends and reads) within `seconds` as a whole (`cluster.deadline`),
        not only each read; one that overran says so, whatever its cut read raised (a TLS
        socket shut under a read raises ValueError) or seemed to say. Close an answer only
        after `forget`."""
        from openrag_tui.cluster.deadline import Deadline

        with Deadline(seconds) as bound:
            try:
                yield bound
            except Exception:
                if bound.expired:
                    raise self._too_slow() from None
                raise
            if bound.expired:  # a body without a length, cut: it only looks whole
                raise self._too_slow()

    def _send(self, url: str, bound: Deadline) -> Answer:
        """The network round trip, with transport failures as DashboardErrors."""
        import http.client
        import ssl
        from urllib.error import URLError
        from urllib.request import Request

        if urlsplit(url).scheme not in ("http", "https"):
            raise DashboardError(
                f"request to {redact(url)} failed: the dashboard URL must start with http:// "
                "or https://"
            )
        if self._unsendable:
            raise DashboardAuthError(
                f"the token for the Ray dashboard at {self.display_url} has a line break in it: "
                f"{TOKEN_HELP}"
            )
        try:
            response = self._opener.open(Request(url, headers=self.headers), timeout=bound.left())
        except (TimeoutError, URLError) as error:
            reason = error.reason if isinstance(error, URLError) else error
            if isinstance(reason, TimeoutError):
                raise self._too_slow() from error
            if isinstance(reason, ssl.SSLError):
                raise self._untrusted(reason) from error
            raise self._unreachable() from error
        except (ConnectionError, http.client.HTTPException) as error:
            raise self._unreachable() from error
        except (OSError, ValueError) as error:
            raise DashboardError(f"request to {redact(url)} failed: {error}") from error
        return Answer(url, response.status, response.headers, response)

    def _read(self, response: Answer) -> bytes:
        """The body, within the size bound (the time bound is the exchange's `_bounded`)."""
        import http.client

        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.chunks(READ_CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise DashboardError(
                        f"the Ray dashboard at {self.display_url} sent more than "
                        f"{MAX_RESPONSE_BYTES >> 20} MiB for {redact(response.url)}: refused"
                    )
                chunks.append(chunk)
        except TimeoutError as error:
            raise self._too_slow() from error
        except (OSError, http.client.HTTPException) as error:
            raise DashboardUnreachable(
                f"the Ray dashboard at {self.display_url} broke off its answer: {error}"
            ) from error
        return b"".join(chunks)

    def _redirect_target(self, url: str, response: Answer) -> str:
        target = urljoin(url, response.headers.get("Location", ""))
        try:
            elsewhere = _origin(url) != _origin(target)
        except ValueError:  # a port that is no number, or out of range
            raise DashboardError(
                f"the Ray dashboard at {self.display_url} redirected to {redact(target)}, "
                "which is not a URL: refused"
            ) from None
        if elsewhere:
            raise DashboardError(
                f"the Ray dashboard at {self.display_url} redirected to {redact(target)}, "
                "another host: refused"
            )
        return target

    def _unreachable(self) -> DashboardUnreachable:
        return DashboardUnreachable(
            f"cannot reach the Ray dashboard at {self.display_url} (is the cluster running?)"
        )

    def _untrusted(self, error: ssl.SSLError) -> DashboardUnreachable:
        import ssl

        if isinstance(error, ssl.SSLCertVerificationError):
            return DashboardUnreachable(
                f"the Ray dashboard at {self.display_url} has a certificate that is not trusted "
                f"({error.verify_message}): set REQUESTS_CA_BUNDLE to the file of its CA"
            )
        return DashboardUnreachable(
            f"the TLS handshake with the Ray dashboard at {self.display_url} failed: {error}"
        )

    def _too_slow(self) -> DashboardUnreachable:
        return DashboardUnreachable(
            f"the Ray dashboard at {self.display_url} did not answer within {self.timeout:g}s"
        )

    def _check(self, response: Answer) -> None:
        """HTTP errors as DashboardErrors; 401/403 say how to provide the token."""
        if response.status == 401:
            raise DashboardAuthError(
                f"the Ray dashboard at {self.display_url} requires a token: {TOKEN_HELP}"
            )
        if response.status == 403:
            raise DashboardAuthError(
                f"the Ray dashboard at {self.display_url} refused the token: {TOKEN_HELP}"
            )
        if response.status >= 400:
            raise DashboardError(f"{redact(response.url)} answered HTTP {response.status}")


def _opener_for(base_url: str) -> OpenerDirector:
    """What requests and curl look up in the environment, looked up once per client (a panel
    polls seven GETs every few seconds; redirects stay on the same origin): the proxy for the
    dashboard's scheme (else ALL_PROXY) unless NO_PROXY names its host, and for HTTPS the CA
    bundle. Only these handlers: no redirect is followed (`_get` decides), no other scheme is
    opened, every status is an answer."""
    import urllib.request

    found = urllib.request.getproxies()
    parts = urlsplit(base_url)
    scheme = parts.scheme
    proxy = found.get(scheme) or found.get("all")
    proxies = {}
    if proxy and not _bypassed(parts.hostname or "", found.get("no", "")):
        if "://" in proxy and urlsplit(proxy).scheme != "http":
            raise DashboardError(
                f"the proxy {redact(proxy)} for {redact(base_url)} is not an http:// proxy: "
                "openrag-tui reaches the dashboard through http:// proxies only (NO_PROXY "
                "naming its host goes direct)"
            )
        proxies[scheme] = proxy
    from openrag_tui.cluster.deadline import HTTPHandler, HTTPSHandler

    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler(proxies),
        HTTPHandler(),
    ]
    if scheme == "https":
        handlers.append(HTTPSHandler(context=_verifying_context()))
    opener = urllib.request.OpenerDirector()
    for handler in handlers:
        opener.add_handler(handler)
    return opener


def _verifying_context() -> ssl.SSLContext:
    """Verification against the bundle named in the environment, else certifi's; a bundle that
    cannot be loaded is a DashboardError, never an unverified connection."""
    import ssl

    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not bundle:
        try:
            import certifi
        except ImportError:
            return ssl.create_default_context()
        bundle = certifi.where()
    try:
        if os.path.isdir(bundle):
            return ssl.create_default_context(capath=bundle)
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as error:
        raise DashboardError(f"cannot load the CA bundle {bundle}: {error}") from error


def _origin(url: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port (ValueError for a port that is no number or out of range)."""
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY names the host: as urllib reads it (names, domain suffixes, `*`), and
    CIDR blocks for an address (`10.0.0.0/8`), as requests reads it."""
    if not no_proxy:
        return False
    import ipaddress
    import urllib.request

    if urllib.request.proxy_bypass_environment(host, {"no": no_proxy}):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in no_proxy.split(","):
        try:
            if "/" in entry and address in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def _without_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without `user:password@`, and that login (percent-decoded), if it had one."""
    from urllib.parse import unquote

    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    return parts._replace(netloc=host).geturl(), (unquote(user), unquote(password))


def _basic(login: str, password: str) -> str:
    """An HTTP Basic `Authorization` value, encoded as requests encodes it (latin-1 first)."""
    from base64 import b64encode

    credentials = f"{login}:{password}"
    try:
        encoded = credentials.encode("latin-1")
    except UnicodeEncodeError:
        encoded = credentials.encode("utf-8")
    return f"Basic {b64encode(encoded).decode('ascii')}"


def _netrc_login(url: str) -> str | None:
    """Basic credentials for the URL's host from the file NETRC names, else ~/.netrc, as requests
    and curl find them; an unreadable or malformed file is no login."""
    import netrc

    host = urlsplit(url).hostname
    names = [os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]
    for name in names:
        try:
            path = Path(name).expanduser()
            if not path.exists():
                continue
            found = netrc.netrc(str(path)).authenticators(host or "")
        except (netrc.NetrcParseError, OSError, RuntimeError):  # RuntimeError: no home
            return None
        if found is None:
            return None
        login, account, password = found
        return _basic(login or account or "", password or "")
    return None
