"""A stand-in for OpenRAG's HTTP API (the OpenRAG app cannot run here), following the contract
the product is written to (routes, status codes, bodies, bearer auth): FastAPI-style errors
`{"detail": ...}`, 201/202 with `task_status_url`, task states QUEUED → SERIALIZING → CHUNKING →
INSERTING → COMPLETED, `error_url` and a whole Python traceback for a FAILED task, 409 for a file
already in the partition, `/queue/info` for admins only.

Its workers are simulated: `total_slots` tasks run at once, each taking `task_seconds`; more wait
QUEUED (OpenRAG accepts every upload). Faults are injected through `faults`, and what happened is
recorded for the tests to check: every upload per file id, every request's Authorization header,
and the most tasks ever active at once.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ACTIVE = ("QUEUED", "SERIALIZING", "CHUNKING", "INSERTING")
STEPS = ("SERIALIZING", "CHUNKING", "INSERTING")
SUPPORTED = [".pdf", ".txt", ".md", ".docx", ".html", ".pptx", ".eml"]


@dataclass
class Faults:
    """What goes wrong, set by a test while the server runs."""

    unavailable: int = 0  # the next N requests answer 503
    forget_after_completion: bool = False  # a finished task answers 404 (retention passed)
    fail_names: tuple[str, ...] = ("broken",)  # files whose id contains one of these FAIL
    reject_names: tuple[str, ...] = ("unsupported",)  # → 415 at upload
    admin: bool = True  # False: /queue/info answers 403 (a token that is not an admin's)


@dataclass
class Task:
    task_id: str
    partition: str
    file_id: str
    state: str = "QUEUED"
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    cancel: bool = False


@dataclass
class Record:
    """What the tests check afterwards."""

    uploads: dict[tuple[str, str], int] = field(default_factory=dict)  # (partition, id) → POST/PUT
    methods: list[tuple[str, str]] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    max_active: int = 0
    metadata: dict[tuple[str, str], dict] = field(default_factory=dict)


class OpenRagStandIn:
    def __init__(
        self, total_slots: int = 4, task_seconds: float = 0.2, token: str | None = None
    ) -> None:
        self.total_slots = total_slots
        self.task_seconds = task_seconds
        self.token = token
        self.faults = Faults()
        self.record = Record()
        self.tasks: dict[str, Task] = {}
        self._active: dict[str, Task] = {}  # the tasks not ended yet
        self.files: dict[tuple[str, str], dict[str, Any]] = {}  # in the partition: indexed
        self.lock = threading.RLock()
        self.totals = {"COMPLETED": 0, "CANCELLED": 0, "FAILED": 0}
        self._stop = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self._work, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def restart(self) -> None:
        """OpenRAG restarted: every task is gone (files already indexed stay)."""
        with self.lock:
            self.tasks.clear()
            self._active.clear()

    # the simulated workers

    def active(self) -> list[Task]:
        return [t for t in self._active.values() if t.state in ACTIVE]

    def _work(self) -> None:
        """Start queued tasks in slot order and move running ones on, every half millisecond
        (only active tasks are looked at: the server stays as fast with thousands done)."""
        while not self._stop.is_set():
            with self.lock:
                now = time.monotonic()
                active = sorted(self._active.values(), key=lambda t: t.created)
                running = [t for t in active if t.state in STEPS]
                for task in active:
                    if task.state == "QUEUED" and len(running) < self.total_slots:
                        task.state, task.started = "SERIALIZING", now
                        running.append(task)
                for task in running:
                    self._advance(task, now)
                self.record.max_active = max(self.record.max_active, len(self.active()))
            time.sleep(0.0005)

    def _advance(self, task: Task, now: float) -> None:
        if task.cancel:
            self._end(task, "CANCELLED")
            return
        share = (now - (task.started or now)) / max(self.task_seconds, 1e-9)
        if share >= 1:
            failed = any(name in task.file_id for name in self.faults.fail_names)
            self._end(task, "FAILED" if failed else "COMPLETED")
        else:
            task.state = STEPS[min(int(share * len(STEPS)), len(STEPS) - 1)]

    def _end(self, task: Task, state: str) -> None:
        task.state = state
        self._active.pop(task.task_id, None)
        self.totals[state] += 1
        if state == "COMPLETED":
            self.files[(task.partition, task.file_id)] = {"file_id": task.file_id}
        if state != "FAILED" and self.faults.forget_after_completion:
            del self.tasks[task.task_id]

    # the routes

    def handle(self, method: str, path: str, query: dict, headers: Any, body: bytes):
        self.record.authorizations.append(headers.get("Authorization"))
        self.record.methods.append((method, path))
        if self.faults.unavailable > 0:
            self.faults.unavailable -= 1
            return 503, {"detail": "Service Unavailable"}
        if self.token is not None and headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"detail": "Invalid token"}
        with self.lock:
            return self._route(method, path, query, headers, body)

    def _route(self, method, path, query, headers, body):
        if match := re.fullmatch(r"/indexer/partition/([^/]+)/file/([^/]+)", path):
            partition, file_id = match[1], match[2]
            if method in ("POST", "PUT"):
                return self._upload(method, partition, file_id, headers, body)
            if method == "DELETE":
                if self.files.pop((partition, file_id), None) is None:
                    return 404, {"detail": f"File '{file_id}' not found in partition {partition}"}
                return 204, None
        if match := re.fullmatch(r"/indexer/task/([^/]+)(/error)?", path):
            task = self.tasks.get(match[1])
            if task is None:
                return 404, {"detail": f"Task '{match[1]}' not found."}
            if method == "DELETE":
                task.cancel = True
                return 200, {"message": f"Cancellation signal sent for task {task.task_id}"}
            if match[2]:
                return 200, {"task_id": task.task_id, "traceback": _traceback(task.file_id)}
            answer = {"task_id": task.task_id, "task_state": task.state, "details": {}}
            if task.state == "FAILED":
                answer["error_url"] = f"{self.url}/indexer/task/{task.task_id}/error"
            return 200, answer
        if match := re.fullmatch(r"/partition/([^/]+)/file/([^/]+)", path):
            found = self.files.get((match[1], match[2]))
            if found is None:
                return 404, {"detail": "File not found in partition"}
            return 200, found
        if path == "/queue/info":
            if not self.faults.admin:
                return 403, {"detail": "Admin privileges required"}
            active = self.active()
            statuses: dict[str, int] = {}
            for task in active:
                statuses[task.state] = statuses.get(task.state, 0) + 1
            return 200, {
                "workers": {"total_slots": self.total_slots, "pool_size": self.total_slots,
                            "max_per_actor": 1},
                "tasks": {"active": len(active), "active_statuses": statuses,
                          "total_completed": self.totals["COMPLETED"],
                          "total_cancelled": self.totals["CANCELLED"],
                          "total_failed": self.totals["FAILED"]},
            }  # fmt: skip
        if path == "/queue/tasks":
            wanted = (query.get("task_status") or ["active"])[0]
            tasks = [
                {"task_id": t.task_id, "state": t.state, "details": {}, "created_at": t.created,
                 "duration_ms": 0, "url": f"{self.url}/indexer/task/{t.task_id}"}
                for t in (self._active if wanted == "active" else self.tasks).values()
                if (t.state in ACTIVE if wanted == "active" else t.state == wanted.upper())
            ]  # fmt: skip
            return 200, {"tasks": tasks}
        if path == "/indexer/supported/types":
            return 200, {"extensions": SUPPORTED, "mimetypes": ["application/pdf", "text/plain"]}
        return 404, {"detail": "Not Found"}

    def _upload(self, method, partition, file_id, headers, body):
        parts = _multipart(headers.get("Content-Type", ""), body)
        if "file" not in parts:
            return 422, {"detail": [{"loc": ["body", "file"], "msg": "Field required"}]}
        try:
            metadata = json.loads(parts.get("metadata") or "{}")
        except ValueError:
            return 422, {"detail": "Invalid JSON in metadata"}
        if any(name in file_id for name in self.faults.reject_names):
            return 415, {"detail": f"Unsupported file type for '{file_id}'"}
        key = (partition, file_id)
        if method == "POST" and key in self.files:
            return 409, {"detail": f"File '{file_id}' already exists in partition {partition}"}
        if method == "PUT":
            if key not in self.files:
                return 404, {"detail": f"File '{file_id}' not found in partition {partition}"}
            del self.files[key]
        self.record.uploads[key] = self.record.uploads.get(key, 0) + 1
        self.record.metadata[key] = metadata
        task = Task(uuid.uuid4().hex, partition, file_id)
        self.tasks[task.task_id] = task
        self._active[task.task_id] = task
        self.record.max_active = max(self.record.max_active, len(self.active()))
        status = 201 if method == "POST" else 202
        return status, {"task_status_url": f"{self.url}/indexer/task/{task.task_id}"}


def _traceback(file_id: str) -> list[str]:
    return [
        "Traceback (most recent call last):\n",
        '  File "/app/openrag/components/indexer/indexer.py", line 212, in add_file\n',
        "    chunks = await self.chunker.split_document(doc)\n",
        f"ValueError: cannot parse '{file_id}': no text layer and OCR is disabled\n",
    ]


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts: dict[str, Any] = {}
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name == "file":
            parts["file"] = part.get_payload(decode=True)
        elif name:
            parts[name] = part.get_content()
    return parts


def _handler(standin: OpenRagStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one write (as uvicorn's do): no
        # Nagle/delayed-ACK stall of 40 ms on every answer of a kept-alive connection

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = unquote(parts.path)  # as uvicorn does, before routing: %2F is a '/'
            status, answer = standin.handle(
                self.command, path, parse_qs(parts.query), self.headers, body
            )
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status, HTTPStatus(status).phrase)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: object) -> None:  # quiet
            pass

    return Handler


@contextmanager
def running_openrag(**options: Any) -> Iterator[OpenRagStandIn]:
    standin = OpenRagStandIn(**options)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()
