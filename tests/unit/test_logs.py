"""`logs`: names resolved on the recorded cluster, Ray's log answers decoded, lines prefixed and
made safe; tail and follow against a fake dashboard that answers as Ray 2.60's does (bodies
measured on a live cluster: raw bytes, 500 with a sentence, no headers before a first byte)."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from openrag_tui.cli import logs as cli_logs
from openrag_tui.cluster import logs
from openrag_tui.cluster.dashboard import (
    ENDPOINTS,
    DashboardClient,
    DashboardError,
    DashboardUnreachable,
)
from openrag_tui.cluster.state import ClusterState, parse
from tests.support.cli import run_cli
from tests.support.raycluster import free_port, wait_until
from tests.support.synthetic import actor, actor_named, recorded, rows, set_rows

# What Ray 2.60's dashboard answered, recorded from a live cluster
BODY = b":job_id:01000000\n:actor_name:Talker\nhello-out-1\n"
NOT_FOUND = "Actor ID ActorID(ffffffffffffffffffffffff01000000) not found."
NOT_SCHEDULED = (
    "Worker ID for Actor ID ActorID(c4211acd3ba8929b9d4f2bc103000000) not found. "
    "Actor is not scheduled yet."
)
NO_FILE = (
    "Could not find a log file. Please make sure the given option exists in the cluster.\n"
    "\tnode_id: 82bb393c4ca2d7f18961b6a290be2325e31f08b93d7056ae42233940\n\tfilename: None\n"
    "\tactor_id: 845f8e04f807cf1a69450a5003000000\n\ttask_id: None\n\tpid: None\n"
    "\tsuffix: {suffix}\n\tsubmission_id: None\n\tattempt_number: 0\n"
)
SERVER_TROUBLE = "500 Internal Server Error\n\nServer got itself in trouble"


@pytest.fixture
def state() -> ClusterState:
    return parse(recorded(), fetched_at=1000.0)


def _state_with(*extra: dict[str, Any]) -> ClusterState:
    payloads = recorded()
    set_rows(payloads, "actors_detail", [*rows(payloads, "actors_detail"), *extra])
    return parse(payloads, fetched_at=1000.0)


# Resolving NAME


def test_an_actor_name_is_that_actor_and_its_lines_are_not_prefixed(state: ClusterState) -> None:
    selection = logs.resolve(state, "marker-head")
    assert [a.name for a in selection.actors] == ["marker-head"]
    assert not selection.is_pool and not selection.prefixed


def test_a_pool_is_its_alive_actors_ours_and_openrags_each_prefixed(state: ClusterState) -> None:
    indexer = logs.resolve(state, "indexer")
    assert [a.name for a in indexer.actors] == ["idx-head-0", "idx-head-1", "idx-worker-0"]
    assert indexer.is_pool and indexer.prefixed
    marker = logs.resolve(state, "marker")  # marker-waiting pends: it has no log to show
    assert [a.name for a in marker.actors] == ["marker-head", "marker-worker"]
    ours = _state_with(actor("ortui-indexer-0", "TuiIndexerWorker", {"GPU": 0.1}, node_id="n"))
    assert "ortui-indexer-0" in [a.name for a in logs.resolve(ours, "indexer").actors]


def test_a_pool_without_an_alive_actor_says_so() -> None:
    payloads = recorded()
    set_rows(payloads, "actors_detail", [actor_named(payloads, "trainer-pg")])
    with pytest.raises(logs.NoAliveActors, match="the marker pool has no alive actor"):
        logs.resolve(parse(payloads, fetched_at=0.0), "marker")


def test_an_unknown_name_is_one_sentence_with_close_names(state: ClusterState) -> None:
    with pytest.raises(logs.UnknownActor) as raised:
        logs.resolve(state, "marker-haed")
    message = str(raised.value)
    assert message.startswith("no actor named 'marker-haed' in the cluster, nor a pool")
    assert "did you mean 'marker-head'" in message and "\n" not in message
    with pytest.raises(logs.UnknownActor, match=r"^no actor named 'zzz'[^;]*$"):
        logs.resolve(state, "zzz")


def test_an_unknown_name_in_a_truncated_listing_says_the_listing_was_cut() -> None:
    payloads = recorded()
    payloads["actors_detail"]["data"]["result"]["total"] = 20_000
    with pytest.raises(logs.UnknownActor, match=r"listed 8 of 20000 actors"):
        logs.resolve(parse(payloads, fetched_at=0.0), "elsewhere")


def test_a_hostile_name_is_shown_inert(state: ClusterState) -> None:
    with pytest.raises(logs.UnknownActor) as raised:
        logs.resolve(state, "x\x1b]0;pwned\x07")
    assert "\x1b" not in str(raised.value) and "\\x1b" in str(raised.value)


def test_an_actor_id_names_an_unnamed_actor_labelled_by_class_and_id() -> None:
    unnamed = actor("", "DocSerializer", {"CPU": 1.0}, node_id="n")
    selection = logs.resolve(_state_with(unnamed), unnamed["actor_id"])
    (found,) = selection.actors
    assert selection.label(found) == f"DocSerializer {unnamed['actor_id'][:8]}"
    in_pool = logs.resolve(_state_with(unnamed), "indexer")  # DocSerializer is OpenRAG's indexer
    assert f"DocSerializer {unnamed['actor_id'][:8]}" in in_pool.labels.values()


def test_the_alive_one_of_a_name_wins_over_its_dead_ones() -> None:
    dead = actor("reused", "Worker", {}, state="DEAD")
    dead["actor_id"] = "d" * 24 + "01000000"
    alive = actor("reused", "Worker", {}, node_id="n")
    selection = logs.resolve(_state_with(dead, alive), "reused")
    assert [a.actor_id for a in selection.actors] == [alive["actor_id"]]
    only_dead = logs.resolve(_state_with(dead), "reused")  # its log may still be read
    assert [a.state for a in only_dead.actors] == ["DEAD"]


def test_one_name_in_two_namespaces_is_told_apart_by_namespace() -> None:
    first = actor("twin", "Worker", {}, node_id="n", namespace="a")
    second = copy.deepcopy(first) | {"ray_namespace": "b", "actor_id": "e" * 24 + "01000000"}
    selection = logs.resolve(_state_with(first, second), "twin")
    assert selection.prefixed
    assert sorted(selection.labels.values()) == ["a/twin", "b/twin"]


def test_an_actor_named_like_a_pool_is_that_actor() -> None:
    selection = logs.resolve(_state_with(actor("indexer", "Worker", {}, node_id="n")), "indexer")
    assert [a.class_name for a in selection.actors] == ["Worker"] and not selection.is_pool


# Ray's answers decoded


def test_a_log_body_is_the_actors_lines_without_rays_bookkeeping() -> None:
    assert logs.log_lines(BODY) == ("hello-out-1",)
    assert logs.log_lines(b"") == ()
    assert logs.log_lines(b"a\r\nb\n:task_name:f\nno newline at the end") == (
        "a",
        "b",
        "no newline at the end",
    )


def test_lines_split_across_chunks_come_out_whole() -> None:
    splitter = logs.LineSplitter()
    text = "première ligne\nzweite Zeile\n".encode()
    cut = text.index("è".encode()) + 1  # in the middle of a two-byte character
    assert splitter.feed(text[:cut]) == []
    assert splitter.feed(text[cut:]) == ["première ligne", "zweite Zeile"]
    assert splitter.feed(b"partial") == [] and splitter.flush() == ["partial"]
    assert splitter.flush() == []


def test_a_line_without_end_is_cut_so_memory_stays_bounded() -> None:
    splitter = logs.LineSplitter(max_line=4)
    assert splitter.feed(b"abcdefghij") == ["abcd", "efgh"]
    assert splitter.feed(b"\n") == ["ij"]


def test_colours_and_titles_are_dropped_other_controls_shown_as_escapes() -> None:
    raw = "\x1b[31mred\x1b[0m \x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x07bell"
    cleaned = logs.clean(raw)
    assert cleaned == "red link \x07bell"
    assert logs.render(cleaned) == "red link \\x07bell"
    assert logs.clean(":actor_name:Talker") is None and logs.clean(":job_id:01000000") is None
    assert logs.clean(":info_message: kept") == ":info_message: kept"


def test_prefixing_names_the_actor_and_is_safe_too() -> None:
    assert logs.render("started", "ortui-indexer-0") == "[ortui-indexer-0] started"
    assert logs.render("x", "evil\x1b[2J") == "[evil\\x1b[2J] x"
    assert logs.render("line\rover") == "line\\rover"


UNREADABLE = "the dashboard could not read the stdout log of w:"


@pytest.mark.parametrize(
    ("body", "state", "expected"),
    [
        (NOT_FOUND, "ALIVE", "the cluster no longer knows w: its log cannot be found"),
        (NOT_SCHEDULED, "PENDING_CREATION", "w has not started yet (PENDING_CREATION): it has"
         " no log"),
        (NOT_SCHEDULED, "DEAD", "w never ran (DEAD): it has no log"),
        (NO_FILE.format(suffix="out"), "ALIVE", "w has no stdout log file on its node (removed or"
         " rotated away)"),
        (SERVER_TROUBLE, "ALIVE", f"{UNREADABLE} 500 Internal Server Error"),
        ("", "ALIVE", f"{UNREADABLE} no reason given"),
    ],
)  # fmt: skip
def test_the_dashboards_500_becomes_one_line(body: str, state: str, expected: str) -> None:
    assert logs.missing_reason(body, "w", ("out",), state) == expected


# Against a dashboard that answers as Ray's


@dataclass
class FakeRay:
    """The recorded cluster's listings, and log files by (actor id, suffix): bytes, or the
    sentence of a 500. A stream sends no headers before the file has a byte, as Ray's."""

    payloads: dict[str, Any]
    files: dict[tuple[str, str], bytearray] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    status: int | None = None  # every log request answers this, when set
    seen: list[dict[str, str]] = field(default_factory=list)
    disconnected: int = 0  # streams whose client had gone when the server wrote
    closing: bool = False
    changed: threading.Condition = field(default_factory=threading.Condition)

    def append(self, actor_id: str, suffix: str, data: bytes) -> None:
        with self.changed:
            self.files.setdefault((actor_id, suffix), bytearray()).extend(data)
            self.changed.notify_all()

    def stop(self) -> None:
        with self.changed:
            self.closing = True
            self.changed.notify_all()


def _last_lines(data: bytes, count: int) -> bytes:
    return data if count == -1 else b"".join(data.splitlines(keepends=True)[-count:])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeRay

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(split.query).items()}
        self.fake.seen.append({"path": split.path, **query})
        names = {path: name for name, path in ENDPOINTS.items()}
        if self.path in names:
            return self._reply(200, json.dumps(self.fake.payloads[names[self.path]]).encode())
        key = (query.get("actor_id", ""), query.get("suffix", "out"))
        if self.fake.status is not None:
            return self._reply(self.fake.status, b"{}")
        if key in self.fake.errors or key not in self.fake.files:
            return self._reply(500, self.fake.errors.get(key, NOT_FOUND).encode())
        if split.path == "/api/v0/logs/file":
            return self._reply(200, _last_lines(bytes(self.fake.files[key]), int(query["lines"])))
        self._stream(key, int(query["lines"]))

    def _stream(self, key: tuple[str, str], count: int) -> None:
        fake = self.fake
        log = fake.files[key]  # as Ray's agent keeps its file open: a new worker's is another
        with fake.changed:
            fake.changed.wait_for(lambda: log or fake.closing)
            if fake.closing:
                return
            sent = len(log)
            chunk = _last_lines(bytes(log), count)
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while not fake.closing:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                with fake.changed:
                    fake.changed.wait_for(lambda at=sent: len(log) > at or fake.closing, 1)
                    chunk = bytes(log[sent:])
                    sent += len(chunk)
        except OSError:
            with fake.changed:
                fake.disconnected += 1
        self.close_connection = True

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[tuple[str, FakeRay]]:
    ray = FakeRay(recorded())
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"fake": ray}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", ray
    finally:
        ray.stop()
        server.shutdown()
        server.server_close()


def _id(name: str) -> str:
    return actor_named(recorded(), name)["actor_id"]


def _actor(name: str) -> logs.Actor:
    state = parse(recorded(), fetched_at=0.0)
    return next(a for a in state.actors if a.name == name)


def test_tail_reads_both_logs_with_the_clients_token(fake: tuple[str, FakeRay]) -> None:
    url, ray = fake
    ray.append(_id("marker-head"), "out", BODY + b"".join(b"line %d\n" % n for n in range(9)))
    ray.append(_id("marker-head"), "err", b":job_id:01000000\n\x1b[33mwarning\x1b[0m\n")
    found = logs.tail(DashboardClient(url, token="s3cret"), _actor("marker-head"), 3)
    assert found == logs.LogTail("marker-head", ("line 6", "line 7", "line 8"), ("warning",))
    assert {seen["suffix"] for seen in ray.seen} == {"out", "err"}
    assert all(seen["lines"] == "3" for seen in ray.seen)


def test_tail_says_which_logs_are_missing_in_one_line(fake: tuple[str, FakeRay]) -> None:
    url, ray = fake
    marker = _id("marker-head")
    ray.errors[(marker, "out")] = NO_FILE.format(suffix="out")
    ray.errors[(marker, "err")] = NO_FILE.format(suffix="err")
    found = logs.tail(DashboardClient(url), _actor("marker-head"), 5)
    assert (found.out, found.err) == ((), ())
    assert found.missing == (
        "marker-head has no stdout and stderr log file on its node (removed or rotated away)"
    )
    ray.append(marker, "err", b"only this\n")
    del ray.errors[(marker, "err")]
    found = logs.tail(DashboardClient(url), _actor("marker-head"), 5)
    assert found.err == ("only this",) and found.missing is not None and "stdout" in found.missing


def test_tail_of_a_dashboard_at_its_limit_or_gone_raises(fake: tuple[str, FakeRay]) -> None:
    url, ray = fake
    ray.status = 429
    with pytest.raises(DashboardError, match="limit of concurrent state requests"):
        logs.tail(DashboardClient(url), _actor("marker-head"))
    with pytest.raises(DashboardUnreachable):
        logs.tail(DashboardClient(f"http://127.0.0.1:{free_port()}"), _actor("marker-head"))


class _Collector:
    """Drains a follow in a thread, so the test can wait for what it shows."""

    def __init__(self, items: logs.Follow) -> None:
        self.items = items
        self.seen: list[logs.LogLine | logs.StreamEnded] = []
        self.thread = threading.Thread(target=lambda: self.seen.extend(items), daemon=True)
        self.thread.start()

    def texts(self, stream: str | None = None) -> list[str]:
        return [
            item.text
            for item in list(self.seen)
            if isinstance(item, logs.LogLine) and stream in (None, item.stream)
        ]

    def notices(self) -> list[logs.StreamEnded]:
        return [item for item in list(self.seen) if isinstance(item, logs.StreamEnded)]


INDEXERS = ("idx-head-0", "idx-head-1", "idx-worker-0")


def _selection(ray: FakeRay, name: str) -> logs.Selection:
    return logs.resolve(parse(ray.payloads, fetched_at=0.0), name)


def _streams(ray: FakeRay) -> list[dict[str, str]]:
    return [seen for seen in ray.seen if seen["path"] == "/api/v0/logs/stream"]


def test_follow_shows_the_tail_then_new_lines_and_stops_on_the_event(
    fake: tuple[str, FakeRay],
) -> None:
    url, ray = fake
    for name in INDEXERS:
        for suffix in ("out", "err"):
            ray.append(_id(name), suffix, BODY + b"old 1\nold 2\n")
    stop = threading.Event()
    follow = _Collector(logs.follow(DashboardClient(url), _selection(ray, "indexer"), 1, stop))
    wait_until(lambda: len(follow.texts()) == 6, 10, "the last line of each of the 6 logs")
    assert follow.texts() == ["old 2"] * 6
    head, worker = _id("idx-head-0"), _id("idx-worker-0")
    ray.append(head, "out", b"new a\nnew ")
    ray.append(worker, "err", b"\x1b[1mbold\x1b[0m\n")
    ray.append(head, "out", b"b\n")
    wait_until(lambda: len(follow.texts()) == 9, 10, "the three new lines")
    assert follow.texts("out")[-2:] == ["new a", "new b"] and follow.texts("err")[-1] == "bold"
    assert {item.actor for item in follow.seen if item.text == "bold"} == {"idx-worker-0"}
    assert len(_streams(ray)) == 6 and {s["lines"] for s in _streams(ray)} == {"1"}

    began = time.monotonic()
    stop.set()
    follow.thread.join(5)
    assert not follow.thread.is_alive() and time.monotonic() - began < 2
    assert follow.notices() == []

    def written_to_a_closed_client() -> bool:  # our side hung up: the next writes fail
        for name in INDEXERS:
            for suffix in ("out", "err"):
                ray.append(_id(name), suffix, b"after\n")
        return ray.disconnected == 6

    wait_until(written_to_a_closed_client, 10, "every stream to have been closed by the client")


def test_follow_waits_for_an_empty_logs_first_byte_then_shows_all(
    fake: tuple[str, FakeRay], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ray = fake
    monkeypatch.setattr(logs, "EMPTY_POLL_SECONDS", 0.05)
    marker = _id("marker-head")
    ray.append(marker, "out", b"")
    selection = _selection(ray, "marker-head")
    items = logs.follow(DashboardClient(url), selection, 1, threading.Event(), ["out"])
    wait_until(lambda: len(ray.seen) >= 3, 10, "the empty log to be asked again")
    assert _streams(ray) == []
    ray.append(marker, "out", b"first\nsecond\n")
    assert [next(items), next(items)] == [
        logs.LogLine("marker-head", "out", "first"),
        logs.LogLine("marker-head", "out", "second"),
    ]
    (stream,) = _streams(ray)
    assert stream["lines"] == "-1"  # the whole file: every line in it is new
    items.close()  # closing the iterator ends the follow, as the event does

    def written_to_a_closed_client() -> bool:
        ray.append(marker, "out", b"after\n")
        return ray.disconnected == 1

    wait_until(written_to_a_closed_client, 10, "the stream to have been closed by the client")


def test_follow_goes_on_when_one_log_is_missing_and_ends_with_the_last(
    fake: tuple[str, FakeRay],
) -> None:
    url, ray = fake
    marker = _id("marker-head")
    ray.errors[(marker, "err")] = NO_FILE.format(suffix="err")
    ray.append(marker, "out", b"here\n")
    selection = _selection(ray, "marker-head")
    follow = _Collector(logs.follow(DashboardClient(url), selection, 5, threading.Event()))
    wait_until(lambda: follow.texts() == ["here"] and follow.notices(), 10, "the log that is")
    assert follow.notices() == [
        logs.StreamEnded(
            "marker-head",
            "err",
            "marker-head has no stderr log file on its node (removed or rotated away)",
        )
    ]
    assert follow.thread.is_alive()  # the stdout log is still followed
    ray.stop()  # the dashboard ends its streams: the follow ends, and says so
    follow.thread.join(10)
    assert not follow.thread.is_alive()
    last = follow.seen[-1]
    assert isinstance(last, logs.StreamEnded) and last.stream == "out" and last.failed


def test_follow_keeps_to_who_the_name_means_now(
    fake: tuple[str, FakeRay], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray's stream of a dead worker never ends: the follow notices deaths, restarts and new
    members of the pool by resolving the name again."""
    url, ray = fake
    monkeypatch.setattr(logs, "RECHECK_SECONDS", 0.05)
    for name in INDEXERS:
        ray.append(_id(name), "out", b"up\n")
    follow = _Collector(
        logs.follow(DashboardClient(url), _selection(ray, "indexer"), 5, threading.Event(), ["out"])
    )
    wait_until(lambda: len(follow.texts()) == 3, 10, "the three actors' logs")

    actor_named(ray.payloads, "idx-head-1")["state"] = "DEAD"
    actor_named(ray.payloads, "idx-worker-0")["pid"] = 9999  # restarted: a new worker
    ray.files[(_id("idx-worker-0"), "out")] = bytearray(b"second life\n")  # its new file
    newcomer = actor("idx-new", "IndexerWorkerActor", {"GPU": 0.5}, node_id="n")
    ray.append(newcomer["actor_id"], "out", b"line 1\nline 2\n")
    set_rows(ray.payloads, "actors_detail", [*rows(ray.payloads, "actors_detail"), newcomer])

    wait_until(lambda: len(follow.notices()) == 3, 10, "a notice for each change")
    assert sorted(notice.reason for notice in follow.notices()) == [
        "idx-head-1 is not alive any more: no longer followed",
        "idx-new is alive now: following its log",
        "idx-worker-0 restarted: following its new log",
    ]
    assert not any(notice.failed for notice in follow.notices())
    wait_until(lambda: len(follow.texts()) == 6, 10, "the new logs' lines")
    assert sorted(follow.texts()[3:]) == ["line 1", "line 2", "second life"]
    ray.append(_id("idx-head-1"), "out", b"from a dead worker\n")  # its stream was shut
    ray.append(_id("idx-head-0"), "out", b"still followed\n")
    wait_until(lambda: "still followed" in follow.texts(), 10, "the actor still followed")
    assert "from a dead worker" not in follow.texts()

    for name in ("idx-head-0", "idx-worker-0", "idx-new"):  # the pool is gone: so is the follow
        actor_named(ray.payloads, name)["state"] = "DEAD"
    follow.thread.join(10)
    assert not follow.thread.is_alive()


def test_follow_of_a_list_of_actors_keeps_to_those_actors(
    fake: tuple[str, FakeRay], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given actors rather than a name (as the panel's view of several names does), the follow
    drops the dead and follows the restarted, under the labels given, and adopts no one."""
    url, ray = fake
    monkeypatch.setattr(logs, "RECHECK_SECONDS", 0.05)
    for name in INDEXERS[:2]:
        ray.append(_id(name), "out", b"up\n")
    actors = [_actor(name) for name in INDEXERS[:2]]
    labels = {actor.actor_id: f"view:{actor.name}" for actor in actors}
    items = logs.follow(DashboardClient(url), actors, 1, threading.Event(), ["out"], labels)
    follow = _Collector(items)
    wait_until(lambda: len(follow.texts()) == 2, 10, "both actors' logs")
    assert {item.actor for item in follow.seen} == {"view:idx-head-0", "view:idx-head-1"}

    newcomer = actor("idx-new", "IndexerWorkerActor", {"GPU": 0.5}, node_id="n")
    ray.append(newcomer["actor_id"], "out", b"not asked for\n")
    set_rows(ray.payloads, "actors_detail", [*rows(ray.payloads, "actors_detail"), newcomer])
    actor_named(ray.payloads, "idx-head-1")["state"] = "DEAD"
    wait_until(lambda: follow.notices(), 10, "the death to be noticed")
    assert [n.reason for n in follow.notices()] == [
        "view:idx-head-1 is not alive any more: no longer followed"
    ]
    ray.append(_id("idx-head-0"), "out", b"later\n")
    wait_until(lambda: "later" in follow.texts(), 10, "the actor still followed")
    assert "not asked for" not in follow.texts() and len(follow.notices()) == 1
    actor_named(ray.payloads, "idx-head-0")["state"] = "DEAD"  # none left: the follow ends
    follow.thread.join(10)
    assert not follow.thread.is_alive()


def test_follow_refuses_more_streams_than_the_dashboard_can_spare(state: ClusterState) -> None:
    alive = next(a for a in state.actors if a.state == "ALIVE")
    many = logs.Selection("x", (alive,) * (logs.MAX_STREAMS // 2 + 1), False, {})
    with pytest.raises(logs.TooManyStreams, match=r"needs 34 log streams.*at most 32"):
        logs.follow(DashboardClient("http://127.0.0.1:9"), many, 10, threading.Event())


# The command


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text("RAY_POOL_SIZE=1\n")
    return path


def test_the_command_prints_a_pools_lines_prefixed_and_nothing_else(
    fake: tuple[str, FakeRay], env_file: Path
) -> None:
    url, ray = fake
    ray.append(_id("idx-head-0"), "out", BODY + b"indexing a.pdf\n")
    ray.append(_id("idx-head-0"), "err", b"\x1b]0;title\x07WARNING slow\n")
    ray.append(_id("idx-head-1"), "out", b"idle\n")
    ray.append(_id("idx-head-1"), "err", b"")
    ray.append(_id("idx-worker-0"), "out", b"")
    ray.append(_id("idx-worker-0"), "err", b"")
    result = run_cli("logs", "indexer", "--dashboard", url, env_file=env_file, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "[idx-head-0] hello-out-1",
        "[idx-head-0] indexing a.pdf",
        "[idx-head-0] WARNING slow",
        "[idx-head-1] idle",
    ]
    one = run_cli("logs", "idx-head-0", "--only", "err", "--dashboard", url, env_file=env_file)
    assert (one.returncode, one.stdout) == (0, "WARNING slow\n")


def test_the_command_says_what_is_missing_on_stderr_and_exits_1(
    fake: tuple[str, FakeRay], env_file: Path
) -> None:
    url, ray = fake
    ray.append(_id("marker-head"), "out", b"still here\n")
    ray.errors[(_id("marker-head"), "err")] = NO_FILE.format(suffix="err")
    result = run_cli("logs", "marker-head", "--dashboard", url, env_file=env_file, timeout=60)
    assert (result.returncode, result.stdout) == (1, "still here\n")
    assert result.stderr == (
        "openrag-tui: marker-head has no stderr log file on its node (removed or rotated away)\n"
    )
    pending = run_cli("logs", "marker-waiting", "--follow", "--dashboard", url, env_file=env_file)
    assert pending.returncode == 1 and pending.stdout == ""
    assert "not alive: its log will not grow, not followed" in pending.stderr


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("logs", "nobody"), 2, "no actor named 'nobody'"),
        (("logs", "marker-head", "--lines", "0"), 2, "must be a whole number from 1 to 10000"),
        (("logs", "marker-head", "--lines", "10001"), 2, "from 1 to 10000, got '10001'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    fake: tuple[str, FakeRay], env_file: Path, args: tuple[str, ...], code: int, words: str
) -> None:
    url, _ray = fake
    result = run_cli(*args, "--dashboard", url, env_file=env_file, timeout=60)
    assert (result.returncode, result.stdout) == (code, "")
    assert len(result.stderr.splitlines()) == 1 and words in result.stderr


def test_a_dead_dashboard_is_one_line_and_exit_3(env_file: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("logs", "indexer", "--follow", "--dashboard", url, env_file=env_file)
    assert (result.returncode, result.stdout) == (3, "")
    assert (
        len(result.stderr.splitlines()) == 1 and "cannot reach the Ray dashboard" in result.stderr
    )


def test_the_cli_default_is_the_cores() -> None:
    assert cli_logs.DEFAULT_LINES == logs.DEFAULT_LINES


def test_the_follow_of_one_actor_that_restarts_goes_on_in_its_new_log(
    fake: tuple[str, FakeRay], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its new streams are counted before the old ones are shut: the follow does not end in
    between (it did when the old streams' ends came first)."""
    url, ray = fake
    monkeypatch.setattr(logs, "RECHECK_SECONDS", 0.05)
    ray.append(_id("idx-head-0"), "out", b"up\n")
    items = logs.follow(DashboardClient(url), [_actor("idx-head-0")], 1, threading.Event(),
                        ["out"])  # fmt: skip
    follow = _Collector(items)
    wait_until(lambda: follow.texts() == ["up"], 10, "the first line")
    actor_named(ray.payloads, "idx-head-0")["pid"] = 9999  # restarted: a new worker
    ray.files[(_id("idx-head-0"), "out")] = bytearray(b"second life\n")
    wait_until(lambda: "second life" in follow.texts(), 10, "the new log's line")
    assert follow.thread.is_alive()
    actor_named(ray.payloads, "idx-head-0")["state"] = "DEAD"
    follow.thread.join(10)
    assert not follow.thread.is_alive()
