"""The dashboard client against a real HTTP server on 127.0.0.1 (auth, errors, parallel fetch)."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme

from openrag_tui.cluster.dashboard import (
    ENDPOINTS,
    DashboardAuthError,
    DashboardClient,
    DashboardError,
    DashboardUnreachable,
    decoded,
    default_dashboard_url,
    load_token,
)
from openrag_tui.cluster.refresh import read_state
from tests.support.raycluster import free_port
from tests.support.recorded import load_recorded


class _Dashboard(BaseHTTPRequestHandler):
    """Serves the recorded payloads; demands `token` when set; `broken` paths answer 500,
    `garbled` ones 200 with a page that is not JSON (a proxy's)."""

    token: str | None = None
    broken: frozenset[str] = frozenset()
    garbled: frozenset[str] = frozenset()
    seen: ClassVar[list[dict[str, str]]] = []

    flood = False  # stream a long body, fast, for 3 s

    def do_GET(self) -> None:
        type(self).seen.append({"path": self.path, **dict(self.headers)})
        if self.flood:
            return self._flood()
        if self.token is not None:
            sent = self.headers.get("Authorization")
            if sent is None:
                return self._reply(401, b"{}")
            if sent != f"Bearer {self.token}":
                return self._reply(403, b"{}")
        names = {path: name for name, path in ENDPOINTS.items()}
        if self.path in self.broken or self.path not in names:
            return self._reply(500, b"oops")
        if self.path in self.garbled:
            return self._reply(200, b"<html>Bad Gateway</html>")
        self._reply(200, json.dumps(load_recorded()[names[self.path]]).encode())

    def _flood(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(60 << 20))
        self.end_headers()
        until = time.monotonic() + 3
        with contextlib.suppress(OSError):  # the client gave up, as it should
            while time.monotonic() < until:
                self.wfile.write(b" " * 16384)

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def dashboard() -> Iterator[tuple[str, type[_Dashboard]]]:
    handler = type("Handler", (_Dashboard,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_all_reads_every_endpoint_with_a_non_browser_agent(dashboard) -> None:
    url, handler = dashboard
    client = DashboardClient(url)
    payloads = client.fetch_all()
    assert set(payloads) == set(ENDPOINTS)
    assert payloads["version"]["ray_version"] == "2.60.0"
    assert {seen["path"] for seen in handler.seen} == set(ENDPOINTS.values())
    assert all(not seen["User-Agent"].startswith("Mozilla") for seen in handler.seen)
    assert all("Authorization" not in seen for seen in handler.seen)


@pytest.mark.parametrize(
    "body",
    [
        *(json.dumps(payload).encode() for payload in load_recorded().values()),
        b'{"name": "\\ud800 half a pair", "pid": 7}',  # orjson refuses a lone surrogate
        b'{"utilizationGpu": NaN}',  # Python's json writes NaN; orjson refuses it
    ],
    ids=lambda body: body[:24].decode(errors="replace"),
)
def test_a_body_decodes_as_json_loads_reads_it(body: bytes) -> None:
    expected = json.loads(body)
    found = decoded(body)
    assert json.dumps(found) == json.dumps(expected)  # NaN != NaN: compare the texts


def test_optional_endpoints_may_fail_required_ones_may_not(dashboard) -> None:
    url, handler = dashboard
    handler.broken = frozenset({ENDPOINTS["nodes_summary"], ENDPOINTS["cluster_events"]})
    payloads = DashboardClient(url).fetch_all()
    assert "nodes_summary" not in payloads and "cluster_events" not in payloads
    assert "actors_detail" in payloads
    handler.broken = frozenset({ENDPOINTS["actors_detail"]})
    with pytest.raises(DashboardError, match="HTTP 500"):
        DashboardClient(url).fetch_all()


def test_a_body_that_is_not_json_is_left_out_or_named(dashboard) -> None:
    """Some bodies reach `parse` as sent (UNDECODED): an optional one that is not JSON is left
    out as the client leaves out the others, a required one is one sentence naming it."""
    url, handler = dashboard
    handler.garbled = frozenset({ENDPOINTS["nodes_summary"], ENDPOINTS["cluster_events"]})
    state = read_state(DashboardClient(url))
    assert len(state.nodes) == 2 and len(state.actors) == 8
    assert all(node.hostname != "vm" for node in state.nodes)  # not the summary's hostname
    handler.garbled = frozenset({ENDPOINTS["actors_detail"]})
    with pytest.raises(
        DashboardError, match=r"^the Ray dashboard at .*: the actors' listing is not JSON$"
    ):
        read_state(DashboardClient(url))


def test_token_is_sent_and_auth_failures_say_how_to_fix_them(dashboard) -> None:
    url, handler = dashboard
    handler.token = "s3cret"
    with pytest.raises(DashboardAuthError, match="requires a token: set RAY_AUTH_TOKEN"):
        DashboardClient(url).get_json(ENDPOINTS["version"])
    with pytest.raises(DashboardAuthError, match="refused the token"):
        DashboardClient(url, token="wrong").get_json(ENDPOINTS["version"])
    body = DashboardClient(url, token="s3cret").get_json(ENDPOINTS["version"])
    assert body["ray_version"] == "2.60.0"
    assert handler.seen[-1]["Authorization"] == "Bearer s3cret"


def test_unreachable_dashboard_is_one_plain_error() -> None:
    client = DashboardClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DashboardUnreachable, match="cannot reach the Ray dashboard at http://127"):
        client.fetch_all()
    assert client.healthy() is False


def test_token_sources_in_order(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-path\n")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home")
    env = {"RAY_AUTH_TOKEN": "from-env", "RAY_AUTH_TOKEN_PATH": str(token_file)}
    assert load_token(env, home=tmp_path) == "from-env"
    assert load_token({"RAY_AUTH_TOKEN_PATH": str(token_file)}, home=tmp_path) == "from-path"
    assert load_token({}, home=tmp_path) == "from-home"
    assert load_token({}, home=tmp_path / "nowhere") is None


def test_dashboard_url_precedence() -> None:
    assert default_dashboard_url("http://cli:1/", "http://env:2", 8265) == "http://cli:1"
    assert default_dashboard_url(None, "http://env:2", 8265) == "http://env:2"
    assert default_dashboard_url(None, None, 8266) == "http://127.0.0.1:8266"


def test_a_prefetch_is_what_the_next_fetch_all_returns(dashboard) -> None:
    url, handler = dashboard
    client = DashboardClient(url)
    client.prefetch()
    payloads = client.fetch_all()
    assert set(payloads) == set(ENDPOINTS) and len(handler.seen) == len(ENDPOINTS)
    client.fetch_all()  # nothing left started: a fetch of its own
    assert len(handler.seen) == 2 * len(ENDPOINTS)
    client.prefetch(("version",))
    assert set(client.fetch_all(("version", "nodes_detail"))) == {"version", "nodes_detail"}


_PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                    "all_proxy", "NO_PROXY", "no_proxy")  # fmt: skip


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY"])
def test_the_proxy_variables_hold_for_every_get(dashboard, monkeypatch, variable: str) -> None:
    """Looked up once per client (not per GET), as requests would for each: through the proxy
    unless NO_PROXY names the dashboard's host."""
    url, handler = dashboard
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, url)
    client = DashboardClient("http://dashboard.invalid:8265")
    for _ in range(2):
        with pytest.raises(DashboardError, match="HTTP 500"):  # the proxy knows no such path
            client.get_json(ENDPOINTS["version"])
    assert [seen["path"] for seen in handler.seen] == [
        "http://dashboard.invalid:8265/api/version"
    ] * 2
    monkeypatch.setenv("NO_PROXY", "dashboard.invalid")
    with pytest.raises(DashboardUnreachable):
        DashboardClient("http://dashboard.invalid:8265").get_json(ENDPOINTS["version"])
    assert len(handler.seen) == 2


def test_a_netrc_login_is_sent_without_a_token(dashboard, monkeypatch, tmp_path: Path) -> None:
    url, handler = dashboard
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login operator password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    DashboardClient(url).get_json(ENDPOINTS["version"])
    DashboardClient(url, token="t0ken").get_json(ENDPOINTS["version"])
    assert [seen.get("Authorization") for seen in handler.seen] == [
        "Basic b3BlcmF0b3I6czNjcmV0",  # operator:s3cret
        "Bearer t0ken",
    ]


def test_status_json_loads_no_http_library_beyond_the_standard_one(dashboard, tmp_path) -> None:
    """requests and urllib3 were 70 of a `status --json`'s ~260 ms (docs/benchmarks.md): the
    dashboard client and the OpenRAG check it makes (none here) must not bring them back."""
    url, _ = dashboard
    env = tmp_path / ".env"
    env.write_text("RAY_POOL_SIZE=1\n")
    code = (
        "import json, sys\n"
        "from openrag_tui.cli import main\n"
        "code = main(['status', '--json', '--env', sys.argv[1], '--dashboard', sys.argv[2]])\n"
        "print(json.dumps({'code': code, 'modules': sorted(sys.modules)}), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(env), url],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "XDG_STATE_HOME": str(tmp_path)},
    )  # fmt: skip
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report["code"] == 0 and json.loads(result.stdout)["nodes"]
    assert [m for m in report["modules"] if m.split(".")[0] in ("requests", "urllib3")] == []


def test_a_url_of_another_scheme_reads_nothing(tmp_path: Path) -> None:
    """urllib opens file:// URLs; the dashboard client opens only http and https."""
    local = tmp_path / "version"
    local.write_text('{"ray_version": "2.60.0"}')
    with pytest.raises(DashboardError, match="must start with http:// or https://"):
        DashboardClient(f"file://{tmp_path}").get_json("/version")


def test_a_ca_bundle_that_cannot_load_fails_each_get_in_one_sentence(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    client = DashboardClient(f"https://127.0.0.1:{free_port()}")  # made without a word
    with pytest.raises(DashboardError, match=r"cannot load the CA bundle .*missing\.pem"):
        client.fetch_all()
    assert client.healthy() is False


@pytest.fixture
def https_dashboard() -> Iterator[tuple[str, type[_Dashboard], trustme.CA]]:
    """The recorded dashboard behind TLS, its certificate issued by a CA of the test's own."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    handler = type("Handler", (_Dashboard,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}", handler, ca
    finally:
        server.shutdown()
        server.server_close()


def test_https_is_verified_against_the_bundle_the_environment_names(
    https_dashboard, monkeypatch, tmp_path: Path
) -> None:
    url, handler, ca = https_dashboard
    for name in (*_PROXY_VARIABLES, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DashboardUnreachable, match=r"not trusted .*set REQUESTS_CA_BUNDLE"):
        DashboardClient(url).get_json(ENDPOINTS["version"])  # certifi's CAs do not know it
    assert handler.seen == []
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    client = DashboardClient(url, token="t0ken")
    assert client.get_json(ENDPOINTS["version"])["ray_version"] == "2.60.0"
    assert handler.seen[-1]["Authorization"] == "Bearer t0ken"


def test_an_https_answer_cut_at_the_deadline_mid_read_is_too_slow(
    https_dashboard, monkeypatch, tmp_path: Path
) -> None:
    """The deadline shuts the TLS socket under a read in progress: the read may raise
    ValueError (its TLS object is gone); the GET still says it was too slow. Each read is made
    2 ms slower so the shut lands inside one (it escaped 21 times in 21 so)."""
    url, handler, ca = https_dashboard
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    read = ssl.SSLSocket.read

    def slow_read(self: ssl.SSLSocket, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.002)
        return read(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLSocket, "read", slow_read)
    handler.flood = True
    client = DashboardClient(url, timeout=0.3)
    for _ in range(3):
        with pytest.raises(DashboardUnreachable, match=r"did not answer within 0\.3s"):
            client.get_json(ENDPOINTS["version"])


def test_credentials_in_the_url_go_in_a_header_and_never_show(dashboard) -> None:
    url, handler = dashboard
    port = url.rsplit(":", 1)[1]
    DashboardClient(f"http://operator:s3cret@127.0.0.1:{port}").get_json(ENDPOINTS["version"])
    DashboardClient(f"http://operator:s3cret@127.0.0.1:{port}", token="t0ken").get_json(
        ENDPOINTS["version"]
    )
    assert [(seen["Host"], seen["Authorization"]) for seen in handler.seen] == [
        (f"127.0.0.1:{port}", "Basic b3BlcmF0b3I6czNjcmV0"),  # operator:s3cret
        (f"127.0.0.1:{port}", "Bearer t0ken"),
    ]
    with pytest.raises(DashboardUnreachable) as raised:
        DashboardClient(f"http://operator:hunter2@127.0.0.1:{free_port()}").fetch_all()
    assert "hunter2" not in str(raised.value) and "operator:" in str(raised.value)


def test_a_cidr_block_in_no_proxy_goes_direct(dashboard, monkeypatch) -> None:
    url, handler = dashboard
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)  # the proxy would answer HTTP 500 to this path
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/8, 127.0.0.0/8")
    with pytest.raises(DashboardUnreachable):
        DashboardClient(f"http://127.0.0.2:{free_port()}").get_json(ENDPOINTS["version"])
    assert handler.seen == []


@pytest.mark.parametrize("proxy", ["https://proxy.invalid:3128", "socks5://proxy.invalid:1080"])
def test_a_proxy_that_is_not_http_is_one_sentence(monkeypatch, proxy: str) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", proxy)
    with pytest.raises(DashboardError, match="is not an http:// proxy"):
        DashboardClient("http://dashboard.invalid:8265").get_json(ENDPOINTS["version"])


def test_a_token_with_a_line_break_is_refused_without_showing_it(dashboard) -> None:
    url, handler = dashboard
    with pytest.raises(DashboardAuthError, match="line break") as raised:
        DashboardClient(url, token="abc\ndef-SECRET").get_json(ENDPOINTS["version"])
    assert "SECRET" not in str(raised.value) and handler.seen == []
