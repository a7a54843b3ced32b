"""The dashboard client against a hostile server on 127.0.0.1: an endless trickle, bodies of the
wrong shape or size, redirects elsewhere. Each is one sentence (exit 3 from `status`), fast."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from openrag_tui.cluster.dashboard import ENDPOINTS, DashboardClient, DashboardError
from openrag_tui.cluster.refresh import read_view
from openrag_tui.config import Settings
from tests.support.cli import run_cli
from tests.support.recorded import load_recorded

TRICKLE_SECONDS = 20.0  # how long the trickling server keeps going (bounded: it stops itself)


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "ok"
    shaped = "nodes_detail"  # the endpoint whose body a shape mode replaces

    def do_GET(self) -> None:
        names = {path: name for name, path in ENDPOINTS.items()}
        if self.mode == "trickle" and self.path == ENDPOINTS["actors_detail"]:
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            deadline = time.monotonic() + TRICKLE_SECONDS
            try:
                while time.monotonic() < deadline:
                    self.wfile.write(b"1\r\n \r\n")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass  # the client gave up, as it should
            return
        if self.mode in ("slow headers", "slow unsized body") and self.path == ENDPOINTS["version"]:
            return self._drip(self.mode == "slow headers")
        if self.mode in ("redirect", "redirect-no-url"):
            where = "http://198.51.100.7:8265" if self.mode == "redirect" else "http://[::1]:99999"
            self.send_response(302)
            self.send_header("Location", where + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.mode == "cut" and self.path == ENDPOINTS["nodes_detail"]:
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b'{"data": {"result": ')  # then the connection closes
            self.close_connection = True
            return
        if self.path == "/api/gcs_healthz":
            return self._reply(b"success")
        shapes = {
            "null": b"null",
            "object": b"{}",
            "list": b"[]",
            "huge": b'{"a": "' + b"x" * (70 << 20) + b'"}',
            "deep": b"[" * 100_000 + b"]" * 100_000,
            "not json": b"<html>Ray</html>",
            "deep inside": b'{"data": {"result": {"result": [{"actor_id": "a", "death_cause": '
            + b"[" * 100_000
            + b"]" * 100_000
            + b"}]}}}",
            "wrong types": b'{"data": {"result": {"result": [{"actor_id": "a", "pid": "one"}]}}}',
        }
        if self.mode in shapes and self.path == ENDPOINTS[self.shaped]:
            return self._reply(shapes[self.mode])
        self._reply(json.dumps(load_recorded()[names[self.path]]).encode())

    def _drip(self, headers: bool) -> None:
        """One header line, or one byte of a body without a length, every 0.4 s: never long
        enough apart for a read's timeout (1 s) to end it."""
        if headers:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")  # send_response would hold it back
        else:
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
        deadline = time.monotonic() + TRICKLE_SECONDS
        with contextlib.suppress(OSError):  # the client gave up, as it should
            while time.monotonic() < deadline:
                self.wfile.write(b"X-Slow: 1\r\n" if headers else b" ")
                self.wfile.flush()
                time.sleep(0.4)
        self.close_connection = True

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up on a huge body, as it should
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[tuple[str, type[_Hostile]]]:
    handler = type("Handler", (_Hostile,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", ["trickle", "slow headers", "slow unsized body"])
def test_an_endless_trickle_is_cut_at_the_timeout(hostile, mode: str) -> None:
    """Each read comes within the timeout; the whole answer is what is bounded."""
    url, handler = hostile
    handler.mode = mode
    client = DashboardClient(url, timeout=1.0)
    began = time.monotonic()
    with pytest.raises(DashboardError, match="did not answer within 1s"):
        client.fetch_all()
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("shaped", ["nodes_detail", "actors_detail"])
@pytest.mark.parametrize(
    "shape", ["null", "object", "list", "huge", "deep", "deep inside", "not json", "wrong types"]
)
def test_a_body_of_the_wrong_shape_or_size_is_one_sentence(
    hostile, shape: str, shaped: str
) -> None:
    """The actors' body is read by `cluster.state` itself (not decoded by the client first):
    both ways, one sentence."""
    url, handler = hostile
    handler.mode, handler.shaped = shape, shaped
    with pytest.raises(DashboardError) as raised:
        read_view(DashboardClient(url, timeout=10), Settings())
    message = str(raised.value)
    assert "\n" not in message and url in message


@pytest.mark.parametrize(
    ("shape", "said"),
    [
        ("null", False),
        ("object", False),
        ("huge", False),  # the client leaves it out, as any optional body it cannot get
        ("wrong types", False),  # the actors' listing's shape: no summary in it
        ("deep inside", True),
        ("not json", True),
        ("list", True),
        ("deep", True),
    ],
)
def test_a_nodes_summary_that_cannot_be_read_is_left_out(hostile, shape: str, said: bool) -> None:
    """The nodes' summary is optional and read by `cluster.state` itself: one that is too
    big, not JSON, nested too deep or of another shape leaves the nodes without their GPUs,
    and the refresh goes on; one that came but could not be read is a warning."""
    url, handler = hostile
    handler.mode, handler.shaped = shape, "nodes_summary"
    view = read_view(DashboardClient(url, timeout=10), Settings())
    assert len(view.nodes) == 2 and all(not node.node.gpu_devices for node in view.nodes)
    assert all(node.node.hostname != "vm" for node in view.nodes)  # not the summary's
    told = [line for line in view.warnings if "/nodes?view=summary" in line]
    assert len(told) == said and all("\n" not in line for line in told)


def test_status_says_so_in_one_line_and_exits_3(hostile, tmp_path: Path) -> None:
    url, handler = hostile
    handler.mode = "object"
    env = tmp_path / ".env"
    env.write_text("RAY_POOL_SIZE=1\n")
    for args in (("status",), ("status", "--json")):
        result = run_cli(*args, "--dashboard", url, env_file=env, timeout=60)
        assert result.returncode == 3 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert "unexpected shape" in result.stderr


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("redirect", r"redirected to http://198\.51\.100\.7:8265.*another host: refused"),
        ("redirect-no-url", r"redirected to http://\[::1\]:99999.*not a URL: refused"),
    ],
)
def test_a_redirect_elsewhere_or_to_no_url_is_refused(hostile, mode: str, said: str) -> None:
    url, handler = hostile
    handler.mode = mode
    with pytest.raises(DashboardError, match=said):
        DashboardClient(url).get_json(ENDPOINTS["version"])
    assert DashboardClient(url).healthy() is False


def test_a_body_cut_before_its_length_is_not_taken_as_whole(hostile) -> None:
    """`read1` just ends when the connection closes early: the client counts what came."""
    url, handler = hostile
    handler.mode = "cut"
    with pytest.raises(DashboardError, match="broke off its answer"):
        DashboardClient(url).get_json(ENDPOINTS["nodes_detail"])
