"""An actor's worker stdout and stderr, from the Ray dashboard's logs API: the last lines, or
followed as they are written. The CLI's `logs` calls it; the panel can, from a worker thread.

What Ray 2.60's dashboard does, measured (and why the code is shaped so):
- `GET /api/v0/logs/file?actor_id=…&suffix=out|err&lines=N` answers 200 with the raw bytes of
  the last N lines (nothing framed: a `format=` parameter is ignored), or 500 with a sentence
  (the actor unknown, not scheduled yet, its file removed). `lines=0` means 1000 to Ray, so at
  least one line is asked for. A worker's files start with Ray's bookkeeping lines
  (`:job_id:…`, `:actor_name:…`), which Ray's own log monitor hides: so do we.
- `GET /api/v0/logs/stream?…&interval=S` sends the tail and then what is appended, chunked, for
  as long as the client stays. It sends no headers until the file has a first byte, so an empty
  file is polled (short requests) until it has one: a request waiting for headers cannot be
  ended from here.
- Each open stream holds one of the dashboard's 100 state-API slots, and Ray frees it only when
  the file grows again after the client left (a write fails): a stream left on a quiet or dead
  actor's log holds its slot for good, and with ~100 held every `status` hangs. Hence: one
  stream per actor and file, never reopened in a loop, only alive actors, at most
  MAX_STREAMS per follow.
"""

from __future__ import annotations

import difflib
import queue
import re
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from openrag_tui.cluster import refresh
from openrag_tui.cluster.dashboard import (
    Answer,
    DashboardClient,
    DashboardError,
    DashboardUnreachable,
)
from openrag_tui.cluster.state import REQUIRED_PAYLOADS, Actor, ClusterState
from openrag_tui.config.pools import POOLS
from openrag_tui.formats import safe

STREAMS = ("out", "err")
STREAM_WORDS = {"out": "stdout", "err": "stderr"}
DEFAULT_LINES = 50
#: a log read (the dashboard asks the node's agent) may take longer than a listing
READ_TIMEOUT_SECONDS = 10.0
#: how often the node's agent looks for new bytes while following
FOLLOW_INTERVAL_SECONDS = 0.5
#: how often an empty log is asked again before its stream can be opened
EMPTY_POLL_SECONDS = 2.0
#: how often a follow resolves NAME again (one actor listing, as a panel refresh reads)
RECHECK_SECONDS = 5.0
#: 2 per actor followed, of the dashboard's 100 (RAY_STATE_SERVER_MAX_HTTP_REQUEST)
MAX_STREAMS = 32
#: a line longer than this (a log without newlines) is cut into pieces of this size
MAX_LINE_BYTES = 64 << 10
_MAX_ERROR_BYTES = 64 << 10
#: log reads at once through the client (its connection pool holds 7)
PROBES_AT_ONCE = 4

# Ray's bookkeeping lines at a worker's start and task switch (ray_constants.LOG_PREFIX_*)
_RAY_MARKER = re.compile(r"^:(?:actor_name|task_name|job_id):")
# OSC strings (window titles, links), CSI sequences (colours, cursor moves) and two-byte
# escapes: dropped rather than shown as escapes, they are a log's decoration
_ANSI = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


#: what `follow` yields: lines, and what ended (or began) besides
Follow = Generator["LogLine | StreamEnded", None, None]


class LogsError(Exception):
    """What NAME means cannot be followed or read; the message is the operator's sentence."""


class UnknownActor(LogsError):
    """NAME is no actor's name or id in the cluster, nor a pool: bad input."""


class NoAliveActors(LogsError):
    """A pool was named, and none of its actors is alive."""


class TooManyStreams(LogsError):
    """Following these actors would hold too many of the dashboard's state-API slots."""


@dataclass(frozen=True)
class Selection:
    """The actors NAME stands for, and how each is named in front of its lines."""

    name: str
    actors: tuple[Actor, ...]
    is_pool: bool
    labels: Mapping[str, str]  # actor_id -> label

    @property
    def prefixed(self) -> bool:
        """A pool's lines, or several actors', say whose they are."""
        return self.is_pool or len(self.actors) > 1

    def label(self, actor: Actor) -> str:
        return self.labels.get(actor.actor_id) or label_of(actor)


@dataclass(frozen=True)
class LogTail:
    """The last lines of one actor's stdout and stderr; `missing` says which log is not there."""

    actor: str
    out: tuple[str, ...]
    err: tuple[str, ...]
    missing: str | None = None


@dataclass(frozen=True)
class LogLine:
    """One line an actor wrote, as it wrote it (only colours removed): unsafe for a terminal
    until `render`ed."""

    actor: str
    stream: str  # "out" or "err"
    text: str


@dataclass(frozen=True)
class StreamEnded:
    """What a follow tells besides lines: a log missing or broken off (`failed`; `unreachable`
    when the dashboard went), or a change of who is followed, after which following goes on
    (`failed` False: an actor died or restarted, ending its streams, or joined the pool).
    `stream` is "" when it is about the actor as a whole."""

    actor: str
    stream: str
    reason: str
    unreachable: bool = False
    failed: bool = True


# Pure parts: names, lines, the dashboard's sentences


def label_of(actor: Actor) -> str:
    """The actor's name; an unnamed one (OpenRAG's pool workers may be) by class and id."""
    return actor.name or f"{actor.class_name or 'actor'} {actor.actor_id[:8]}"


def resolve(state: ClusterState, name: str) -> Selection:
    """The actors NAME means: an actor's name (the alive ones with it, else every one), an
    actor's id, or a pool (its alive actors, ours and OpenRAG's). An actor named like a pool
    wins: it can be named no other way, and a pool's actors can each be named."""
    named = [actor for actor in state.actors if actor.name and actor.name == name]
    alive = [actor for actor in named if actor.state == "ALIVE"]
    found = alive or named or [actor for actor in state.actors if actor.actor_id == name]
    if found:
        return _selection(name, found, is_pool=False)
    if name in POOLS:
        members = [a for a in state.actors if a.pool == name and a.state == "ALIVE"]
        if not members:
            raise NoAliveActors(f"the {name} pool has no alive actor: no log to show")
        return _selection(name, members, is_pool=True)
    raise UnknownActor(_unknown(state, name))


def _selection(name: str, actors: Sequence[Actor], is_pool: bool) -> Selection:
    ordered = sorted(actors, key=lambda a: (label_of(a), a.namespace, a.actor_id))
    labels = {a.actor_id: label_of(a) for a in ordered}
    shared = {label for label, n in Counter(labels.values()).items() if n > 1}
    for actor in ordered:  # one name in two namespaces: the namespace tells them apart
        if labels[actor.actor_id] in shared:
            labels[actor.actor_id] = f"{actor.namespace}/{label_of(actor)}"
    return Selection(name, tuple(ordered), is_pool, labels)


def _unknown(state: ClusterState, name: str) -> str:
    text = f"no actor named {safe(name)!r} in the cluster, nor a pool ({', '.join(POOLS)})"
    names = sorted({actor.name for actor in state.actors if actor.name})
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        text += f"; did you mean {', '.join(repr(safe(n)) for n in close)}?"
    if state.actors_truncated:
        text += f" (the dashboard listed {len(state.actors)} of {state.actors_total} actors)"
    return text


class LineSplitter:
    """Bytes in as they come, whole lines out: a chunk may end in the middle of a line (or of
    a character, which is whole again once its line is)."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._pending = b""
        self._max_line = max_line

    def feed(self, chunk: bytes) -> list[str]:
        *complete, self._pending = (self._pending + chunk).split(b"\n")
        lines = [_decode(raw) for raw in complete]
        while len(self._pending) > self._max_line:  # no newline in sight: cut, keep memory
            lines.append(_decode(self._pending[: self._max_line]))
            self._pending = self._pending[self._max_line :]
        return lines

    def flush(self) -> list[str]:
        """The last line, when the log does not end with a newline."""
        rest, self._pending = self._pending, b""
        return [_decode(rest)] if rest else []


def _decode(raw: bytes) -> str:
    return raw.removesuffix(b"\r").decode("utf-8", errors="replace")


def clean(line: str) -> str | None:
    """A log line without its colour codes; None for Ray's bookkeeping lines (not the actor's)."""
    if _RAY_MARKER.match(line):
        return None
    return _ANSI.sub("", line)


def log_lines(body: bytes) -> tuple[str, ...]:
    """The actor's lines in a log body (a whole file answer)."""
    splitter = LineSplitter()
    raw = [*splitter.feed(body), *splitter.flush()]
    return tuple(text for text in map(clean, raw) if text is not None)


def render(text: str, label: str | None = None) -> str:
    """The line as printed: safe on any terminal, `[actor] ` in front when several share the
    output."""
    return f"[{safe(label)}] {safe(text)}" if label is not None else safe(text)


def missing_reason(
    body: str, label: str, streams: Iterable[str] = ("out",), actor_state: str = ""
) -> str:
    """The dashboard's 500 text (a sentence of Ray's, with a dump of options) as one line."""
    words = " and ".join(STREAM_WORDS.get(s, s) for s in streams)
    kind, first = _kind_of(body)
    if kind == "unscheduled" and actor_state == "DEAD":
        return f"{label} never ran (DEAD): it has no log"
    if kind == "unscheduled":
        return f"{label} has not started yet ({actor_state or 'pending'}): it has no log"
    if kind == "forgotten":
        return f"the cluster no longer knows {label}: its log cannot be found"
    if kind == "no-file":
        return f"{label} has no {words} log file on its node (removed or rotated away)"
    if kind == "node":
        return f"the node of {label} does not answer: its {words} log cannot be read"
    return f"the dashboard could not read the {words} log of {label}: {first}"


def _kind_of(body: str) -> tuple[str, str]:
    """What a 500 says, as one of a few kinds (its first line for any other)."""
    text = body.strip()
    first = text.splitlines()[0].strip() if text else "no reason given"
    if "not scheduled yet" in text:
        return "unscheduled", first
    if text.startswith("Actor ID") and "not found" in text:
        return "forgotten", first
    if "Could not find a log file" in text:
        return "no-file", first
    if "Agent for node" in text or "unavailable" in text.lower():
        return "node", first
    return "other", first


# Reading the dashboard


def read_state(client: DashboardClient) -> ClusterState:
    """The actors (and nodes) as the dashboard lists them now: what NAME is resolved against."""
    return refresh.read_state(client, REQUIRED_PAYLOADS)


def tail(
    client: DashboardClient,
    actor: Actor,
    lines: int = DEFAULT_LINES,
    streams: Sequence[str] = STREAMS,
    label: str | None = None,
) -> LogTail:
    """The last `lines` lines of each of the actor's logs (Ray's bookkeeping lines left out).

    A log that is not there is `missing`, not an error: the others are still shown. An
    unreachable dashboard raises DashboardError."""
    label = label or label_of(actor)
    found: dict[str, tuple[str, ...]] = {}
    reasons: dict[tuple[str, str], tuple[str, list[str]]] = {}  # one sentence per kind
    for stream in streams:
        body, error = _read_file(client, actor.actor_id, stream, max(lines, 1))
        if error is None:
            found[stream] = log_lines(body)[-lines:] if lines else ()
        else:
            reasons.setdefault(_kind_of(error), (error, []))[1].append(stream)
    missing = "; ".join(
        missing_reason(text, label, kinds, actor.state) for text, kinds in reasons.values()
    )
    return LogTail(label, found.get("out", ()), found.get("err", ()), missing or None)


def _log_query(actor_id: str, stream: str, lines: int, **extra: Any) -> str:
    return urlencode({"actor_id": actor_id, "suffix": stream, "lines": lines, **extra})


def _read_file(
    client: DashboardClient, actor_id: str, stream: str, lines: int
) -> tuple[bytes, str | None]:
    """(the log's bytes, None), or (b"", the dashboard's sentence) when it has no such log.

    The client's own GET turns a 500 into "HTTP 500" and drops Ray's sentence, so this one
    uses its transport (same auth, time and size bounds) and reads a 500's text."""
    path = f"/api/v0/logs/file?{_log_query(actor_id, stream, lines)}"
    with client._bounded(max(client.timeout, READ_TIMEOUT_SECONDS)) as bound:
        response = client._send(f"{client.base_url}{path}", bound)
        try:
            if response.status == 500:
                return b"", client._read(response).decode("utf-8", errors="replace")
            _check(client, response)
            return client._read(response), None
        finally:
            bound.forget()
            response.close()


def _check(client: DashboardClient, response: Answer) -> None:
    if response.is_redirect:  # the logs API never redirects: not a Ray dashboard's answer
        raise DashboardError(f"the Ray dashboard at {client.display_url} redirected a log read")
    if response.status == 429:
        raise DashboardError(
            f"the Ray dashboard at {client.display_url} is at its limit of concurrent state "
            "requests (HTTP 429): log streams left open elsewhere may hold them"
        )
    client._check(response)


# Following


def follow(
    client: DashboardClient,
    actors: Selection | Sequence[Actor],
    lines: int,
    stop: threading.Event,
    streams: Sequence[str] = STREAMS,
    labels: Mapping[str, str] | None = None,
) -> Follow:
    """The last `lines` lines of each alive actor's logs, then each new line as it is written,
    until `stop` is set or the iterator is closed (from the thread that iterates). Lines of one
    log come in order; logs interleave as they are written.

    Ray's stream never ends by itself, so every RECHECK_SECONDS the actors are looked up again:
    one no longer alive is no longer followed, a restarted one is followed in its new worker's
    log, and, given a Selection, its NAME is resolved again so that a pool's new actor is
    followed from its start; each says so in a StreamEnded that is not `failed`. A log that
    cannot be followed is a failed StreamEnded and the others go on; the iterator ends when no
    log is left. `labels` (actor id -> label) name a plain list's actors, as a Selection's
    name its own. One thread and one dashboard stream per log (see the module's note): raises
    TooManyStreams before opening any beyond MAX_STREAMS."""
    by_name = isinstance(actors, Selection)
    selection = actors if isinstance(actors, Selection) else Selection("", tuple(actors), False, {})
    names = {**{a.actor_id: selection.label(a) for a in selection.actors}, **(labels or {})}
    alive = [actor for actor in selection.actors if actor.state == "ALIVE"]
    wanted = len(alive) * len(streams)
    if wanted > MAX_STREAMS:
        raise TooManyStreams(
            f"following {len(alive)} actors needs {wanted} log streams, and the dashboard "
            f"serves about 100 for everyone: at most {MAX_STREAMS}; name one actor, or choose "
            "one stream (--only out|err)"
        )
    follower = _Follower(client, selection, by_name, names, stop, max(lines, 1), tuple(streams))
    return follower.run(alive)


_STARTED, _DONE = object(), object()


@dataclass
class _Followed:
    """An actor being followed: its worker (pid) and each of its logs' thread token."""

    pid: int
    label: str
    tokens: dict[str, object] = field(default_factory=dict)


class _Follower:
    """The threads of one follow, their queue, the open responses to shut down at the end, and
    the watcher that keeps the followed actors those NAME means now."""

    def __init__(
        self,
        client: DashboardClient,
        selection: Selection,
        by_name: bool,
        labels: Mapping[str, str],
        stop: threading.Event,
        lines: int,
        streams: tuple[str, ...],
    ) -> None:
        self._client = client
        self._selection = selection
        self._by_name = by_name  # resolve the name again (else: look the same actors up)
        self._labels = dict(labels)
        self._stop = stop
        self._lines = lines
        self._streams = streams
        self._ended = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._followed: dict[str, _Followed] = {}  # by actor id
        self._open: dict[object, requests.Response] = {}  # by thread token
        self._probes = threading.BoundedSemaphore(PROBES_AT_ONCE)
        self._session = requests.Session()
        self._session.headers.update(client.headers)  # the client's agent and token or login
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=MAX_STREAMS)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def stopping(self) -> bool:
        return self._stop.is_set() or self._ended.is_set()

    def run(self, actors: Sequence[Actor]) -> Follow:
        for actor in actors:
            self._start(actor, self._labels[actor.actor_id], self._lines)
        threading.Thread(target=self._watch, daemon=True).start()
        return self._items(bool(actors))

    def _items(self, any_started: bool) -> Follow:
        running = 0
        try:
            while any_started and not self._stop.is_set():
                try:
                    item = self._queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _STARTED:
                    running += 1
                elif item is _DONE:
                    running -= 1
                    if not running:
                        return
                else:
                    yield item
        finally:
            self._close()

    def _close(self) -> None:
        """Every stream shut: a reading thread wakes and ends (urllib3 ≥ 2.3 can interrupt a
        read; with an older one the daemon thread ends with its stream)."""
        with self._lock:
            self._ended.set()
            responses, self._open = list(self._open.values()), {}
        for response in responses:
            _shut(response)
        self._session.close()

    # Who is followed

    def _start(self, actor: Actor, label: str, lines: int) -> None:
        with self._lock:
            followed = self._followed[actor.actor_id] = _Followed(actor.pid, label)
            for stream in self._streams:
                token = followed.tokens[stream] = object()
                self._queue.put(_STARTED)  # before the thread's first item: counted in order
                args = (token, actor.actor_id, label, stream, lines)
                threading.Thread(target=self._thread, args=args, daemon=True).start()

    def _drop(self, actor_id: str) -> None:
        """Stop following an actor: its threads end quietly (their tokens are no longer
        current), its streams are shut."""
        with self._lock:
            followed = self._followed.pop(actor_id, None)
            tokens = list(followed.tokens.values()) if followed else []
            responses = [self._open.pop(t) for t in tokens if t in self._open]
        for response in responses:
            _shut(response)

    def _restart(self, actor: Actor, label: str) -> None:
        """Follow the actor's new log, then shut the old streams: the new ones are counted
        first, so the follow does not end in between (its only actor restarting)."""
        with self._lock:
            was = self._followed.get(actor.actor_id)
            tokens = list(was.tokens.values()) if was else []
        self._start(actor, label, self._lines)  # its old tokens are no longer current
        with self._lock:
            responses = [self._open.pop(t) for t in tokens if t in self._open]
        for response in responses:
            _shut(response)

    def _current(self, token: object) -> bool:
        with self._lock:
            return not self.stopping() and any(
                token in followed.tokens.values() for followed in self._followed.values()
            )

    def _watch(self) -> None:
        while not (self._ended.wait(RECHECK_SECONDS) or self._stop.is_set()):
            try:
                state = read_state(self._client)
            except DashboardError:
                continue  # the streams say it when the dashboard is gone for good
            self._update(state)

    def _update(self, state: ClusterState) -> None:
        """Follow whom the actors (or the name) mean in `state`: drop the dead, follow the
        restarted in their new log, and, by name, the newly alive."""
        now: Sequence[Actor] = state.actors
        if self._by_name:
            try:
                selection = resolve(state, self._selection.name)
            except LogsError:
                selection = Selection(self._selection.name, (), self._selection.is_pool, {})
            now = selection.actors
            self._labels.update(selection.labels)
        alive = {actor.actor_id: actor for actor in now if actor.state == "ALIVE"}
        with self._lock:
            followed = dict(self._followed)
        for actor_id, was in followed.items():
            actor = alive.get(actor_id)
            if actor is None:
                self._drop(actor_id)
                self._notice(was.label, f"{was.label} is not alive any more: no longer followed")
            elif actor.pid and actor.pid != was.pid:
                self._notice(was.label, f"{was.label} restarted: following its new log")
                self._restart(actor, was.label)
        for actor_id, actor in alive.items() if self._by_name else ():
            if actor_id in followed:
                continue
            label = self._labels.get(actor_id) or label_of(actor)
            with self._lock:
                full = (len(self._followed) + 1) * len(self._streams) > MAX_STREAMS
            if full:
                self._notice(label, f"{label} is alive too, not followed: at most {MAX_STREAMS}")
                continue
            self._notice(label, f"{label} is alive now: following its log")
            self._start(actor, label, -1)  # a new actor: all of its log is new

    def _notice(self, label: str, text: str) -> None:
        if not self.stopping():
            self._queue.put(StreamEnded(label, "", text, failed=False))

    # One log

    def _thread(self, token: object, actor_id: str, label: str, stream: str, lines: int) -> None:
        try:
            self._follow_one(token, actor_id, label, stream, lines)
        except DashboardError as error:
            self._end(token, label, stream, str(error), isinstance(error, DashboardUnreachable))
        except (requests.RequestException, OSError) as error:
            reason = f"the Ray dashboard at {self._client.display_url} broke off: {error}"
            self._end(token, label, stream, reason, unreachable=True)
        except Exception as error:  # a thread's traceback would land on the terminal
            self._end(token, label, stream, f"following stopped: {type(error).__name__}: {error}")
        finally:
            with self._lock:
                self._open.pop(token, None)
                for followed in self._followed.values():
                    if followed.tokens.get(stream) is token:
                        del followed.tokens[stream]
            self._queue.put(_DONE)

    def _end(
        self, token: object, label: str, stream: str, reason: str, unreachable: bool = False
    ) -> None:
        if self._current(token):  # a stream we shut ourselves ends quietly
            self._queue.put(StreamEnded(label, stream, reason, unreachable=unreachable))

    def _probe(self, actor_id: str, stream: str) -> tuple[bytes, str | None]:
        """Is the log there, and has it a byte yet? Through the client, a few at a time: its
        connection pool is small, and a full pool warns on the terminal."""
        with self._probes:
            return _read_file(self._client, actor_id, stream, 1)

    def _follow_one(
        self, token: object, actor_id: str, label: str, stream: str, lines: int
    ) -> None:
        body, error = self._probe(actor_id, stream)
        while error is None and not body:  # no headers would come: wait for a first byte
            if self._ended.wait(EMPTY_POLL_SECONDS) or not self._current(token):
                return
            body, error = self._probe(actor_id, stream)
            lines = -1  # the whole file: it was empty, so every line in it is new
        if error is not None:
            return self._end(token, label, stream, missing_reason(error, label, (stream,)))
        response = self._open_stream(token, actor_id, stream, lines)
        if response is None:
            return
        try:
            if response.status_code == 500:
                text = _bounded_text(response)
                return self._end(token, label, stream, missing_reason(text, label, (stream,)))
            # the stream is read through requests (it is shut from another thread); its status
            # is checked as the client's own answers are
            _check(
                self._client,
                Answer(response.url, response.status_code, response.headers, response.raw),
            )
            splitter = LineSplitter()
            for chunk in response.iter_content(chunk_size=None):
                self._put_lines(label, stream, splitter.feed(chunk))
            self._put_lines(label, stream, splitter.flush())
            reason = f"the dashboard ended the {STREAM_WORDS[stream]} stream of {label}"
            self._end(token, label, stream, reason)
        finally:
            response.close()

    def _open_stream(
        self, token: object, actor_id: str, stream: str, lines: int
    ) -> requests.Response | None:
        query = _log_query(actor_id, stream, lines, interval=FOLLOW_INTERVAL_SECONDS)
        response = self._session.get(
            f"{self._client.base_url}/api/v0/logs/stream?{query}",
            stream=True,
            timeout=(self._client.timeout, None),  # quiet for hours is still following
            allow_redirects=False,
        )
        if self._current(token):
            with self._lock:
                self._open[token] = response
            if self._current(token):  # not dropped meanwhile (else _drop missed it)
                return response
        _shut(response)
        return None

    def _put_lines(self, label: str, stream: str, raw: Iterable[str]) -> None:
        for text in map(clean, raw):
            if text is not None:
                self._queue.put(LogLine(label, stream, text))


def _shut(response: requests.Response) -> None:
    """End a stream now, even while another thread reads it."""
    shutdown: Callable[[], None] | None = getattr(response.raw, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
    except (OSError, RuntimeError, ValueError):
        pass  # already released or closed
    response.close()


def _bounded_text(response: requests.Response) -> str:
    chunks, size = [], 0
    for chunk in response.iter_content(4096):
        chunks.append(chunk)
        size += len(chunk)
        if size >= _MAX_ERROR_BYTES:
            break
    return b"".join(chunks).decode("utf-8", errors="replace")
