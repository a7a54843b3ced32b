"""One deadline for a whole HTTP exchange: its headers and body, however they trickle.

A socket timeout bounds each read, not the exchange: a server that sends a header line (or a
body byte) just inside the timeout holds the client as long as it likes. One header line every
0.8 s held a 1 s dashboard client for 9.6 s, and http.client reads up to 100 header lines. So a
GET runs inside a `Deadline`: the connections it opens on its thread are watched, and when the
deadline passes their sockets are shut, which ends the read blocked on them at once.

The TCP connect, a proxy's answer to CONNECT (HTTPS through a proxy) and a TLS handshake are
bounded per operation only (the socket timeout): the socket is watched from the end of
`connect()`, once it is the one the exchange reads from (`wrap_socket` takes over the first).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import urllib.request
from types import TracebackType

_running = threading.local()  # the Deadline of the GET on this thread, if any


class Deadline:
    """Shuts the sockets the GETs on this thread open, `seconds` from now. `expired` says
    whether it did (a read it cut looks like the server breaking off)."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        _running.deadline = self
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        _running.deadline = None

    def left(self) -> float:
        """Seconds left (a little at least): the socket timeout of a connection opened now."""
        return max(self.ends - time.monotonic(), 0.01)

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` at the deadline (at once if it has passed)."""
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        _shut(sock)

    def forget(self) -> None:
        """The GET is about to close its connection: stop watching it (waiting for a shut in
        progress), so the deadline never shuts a descriptor another file took since."""
        with self._lock:
            self._sockets.clear()

    def _expire(self) -> None:
        with self._lock:  # a `forget` waits: the sockets are still open while they are shut
            self.expired = True
            for sock in self._sockets:
                _shut(sock)
            self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    """Shut, not close: the reading thread owns the socket and closes it."""
    with contextlib.suppress(OSError):  # already closed, or never connected
        sock.shutdown(socket.SHUT_RDWR)


def _watched(sock: socket.socket | None) -> None:
    deadline: Deadline | None = getattr(_running, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _HTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watched(self.sock)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watched(self.sock)


class HTTPHandler(urllib.request.HTTPHandler):
    """urllib's, with connections the running Deadline watches."""

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPConnection, req)


class HTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's, with connections the running Deadline watches."""

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPSConnection, req, context=self._context)
