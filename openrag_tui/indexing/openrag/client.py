"""OpenRAG's HTTP API for indexing, as its routers define it (one file per request, tasks polled
by id, `/queue/info` for admins). Every answer becomes a value or one of four errors, by what the
batch should do about it:

- Unavailable: it does not answer (connection refused, timeout, 5xx): wait and try again, the
  file's attempts untouched;
- AuthRefused: 401/403: the batch pauses until AUTH_TOKEN is fixed;
- DocumentError: 413/415/422 (and other 4xx): OpenRAG refused this file, with its words;
- AlreadyThere: 409 on upload: the file is in the partition already.

The bearer token is read by the caller (from the shared .env) and sent on every request; it is
never logged, and messages name the URL with any password in it masked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from openrag_tui.config import EnvFile, EnvFileError, redact
from openrag_tui.indexing.errors import AuthRefused, DocumentError, Unavailable

if TYPE_CHECKING:
    import requests

__all__ = ["AuthRefused", "OpenRag", "QueueInfo", "file_id_of"]

TIMEOUT_SECONDS = 30.0
#: task states, as OpenRAG names them
ACTIVE_STATES = ("QUEUED", "SERIALIZING", "CHUNKING", "INSERTING")
FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED")
MAX_DETAIL = 300


class AlreadyThere(Exception):
    """409: the partition holds a file with this id (OpenRAG's words in the message)."""


class Down(Unavailable):
    """OpenRAG does not answer (or answers 5xx); `reason` is the why without the where."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where} {reason}")
        self.reason = reason


class Refused(AuthRefused):
    """401/403, with the HTTP status and OpenRAG's words."""

    def __init__(self, where: str, status: int, detail: str) -> None:
        super().__init__(
            f"{where} refused the token (HTTP {status}: {detail}): set AUTH_TOKEN in the .env "
            "to a valid token"
        )
        self.status = status
        self.reason = f"refused the token (HTTP {status}: {detail})"


class TaskGone(Exception):
    """404 for a task: its retention passed, or OpenRAG restarted."""


class NotThere(Exception):
    """404 for a PUT: the partition has no file with this id to replace."""


@dataclass(frozen=True)
class QueueInfo:
    """`GET /queue/info`: the pools' slots and the tasks in them."""

    total_slots: int
    pool_size: int
    max_per_actor: int
    active: int
    active_statuses: dict[str, int] = field(default_factory=dict)
    total_completed: int = 0
    total_cancelled: int = 0
    total_failed: int = 0

    @property
    def free(self) -> int:
        return max(0, self.total_slots - self.active)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_slots": self.total_slots,
            "pool_size": self.pool_size,
            "max_per_actor": self.max_per_actor,
            "active": self.active,
            "active_statuses": dict(self.active_statuses),
            "total_completed": self.total_completed,
            "total_cancelled": self.total_cancelled,
            "total_failed": self.total_failed,
            "free": self.free,
        }


def file_id_of(relative: str) -> str:
    """A document's id in OpenRAG: its POSIX path inside DATA_VOLUME, readable, with `/` (which
    OpenRAG forbids) written `%2F` and a literal `%` written `%25`, so two paths never share an
    id and the id reads back to its path."""
    return relative.replace("%", "%25").replace("/", "%2F")


def token_of(env_file: str | None) -> str | None:
    """AUTH_TOKEN from the shared .env, read when a client is made (an operator who fixes it
    there is heard without a restart)."""
    if not env_file:
        return None
    try:
        return EnvFile.read(env_file).values.get("AUTH_TOKEN") or None
    except EnvFileError:
        return None


def task_id_of(status_url: str) -> str:
    """The task id at the end of a `task_status_url`."""
    task_id = status_url.rstrip("/").rsplit("/", 1)[-1]
    if not task_id:
        raise Unavailable(f"OpenRAG answered an upload with no task id ({status_url!r})")
    return task_id


def reason_of(traceback: list[str] | str) -> str:
    """The sentence of a FAILED task: the traceback's last line, not the traceback."""
    lines = traceback.splitlines() if isinstance(traceback, str) else traceback
    text = [line.strip() for line in lines if line and line.strip()]
    return text[-1][:MAX_DETAIL] if text else "OpenRAG gave no reason"


class OpenRag:
    """One OpenRAG API; thread-safe enough for the coordinator's worker threads (a requests
    Session per instance, one instance per thread pool use)."""

    def __init__(self, url: str, token: str | None, timeout: float = TIMEOUT_SECONDS) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        import requests.adapters  # here: `status` decides whether to ask OpenRAG without it

        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = "openrag-tui (python-requests)"
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    @property
    def where(self) -> str:
        return f"OpenRAG at {redact(self.url)} (OPENRAG_TUI_OPENRAG_URL, or APP_URL and APP_PORT)"

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        import requests

        try:
            response = self._session.request(
                method, self.url + path, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.Timeout:
            raise Down(self.where, f"did not answer within {self.timeout:.0f} s") from None
        except requests.RequestException as error:
            raise Down(self.where, f"does not answer ({_cause(error)})") from None
        if response.status_code >= 500:
            raise Down(self.where, f"answered HTTP {response.status_code}: {detail_of(response)}")
        if response.status_code in (401, 403):
            raise Refused(self.where, response.status_code, detail_of(response))
        return response

    # indexing

    def upload(
        self,
        partition: str,
        file_id: str,
        name: str,
        content: bytes,
        metadata: dict[str, Any],
        replace: bool = False,
    ) -> str:
        """POST (or PUT, replacing the file) one file; its task id."""
        path = f"/indexer/partition/{_segment(partition)}/file/{_segment(file_id)}"
        response = self._request(
            "PUT" if replace else "POST",
            path,
            files={"file": (name, content)},
            data={"metadata": json.dumps(metadata)},
        )
        if response.status_code == 409:
            raise AlreadyThere(detail_of(response))
        if replace and response.status_code == 404:
            raise NotThere(detail_of(response))
        if response.status_code not in (200, 201, 202):
            raise DocumentError(
                f"OpenRAG refused it (HTTP {response.status_code}): {detail_of(response)}"
            )
        try:
            return task_id_of(str(response.json()["task_status_url"]))
        except (ValueError, KeyError, TypeError):
            raise Down(self.where, "answered the upload without a task_status_url") from None

    def task_state(self, task_id: str) -> str:
        """The task's state (QUEUED … COMPLETED, FAILED, CANCELLED); TaskGone on 404."""
        response = self._request("GET", f"/indexer/task/{_segment(task_id)}")
        if response.status_code == 404:
            raise TaskGone(detail_of(response))
        state = _json(response, self.where).get("task_state")
        if not isinstance(state, str):
            raise Down(self.where, "answered a task without its state")
        return state.upper()

    def task_failure(self, task_id: str) -> str:
        """Why the task FAILED, in one sentence."""
        response = self._request("GET", f"/indexer/task/{_segment(task_id)}/error")
        if response.status_code != 200:
            return f"OpenRAG gave no reason (HTTP {response.status_code})"
        traceback = _json(response, self.where).get("traceback") or []
        return reason_of(traceback if isinstance(traceback, list | str) else str(traceback))

    def cancel(self, task_id: str) -> bool:
        """Ask OpenRAG to cancel the task (it stops later, not at once); False when unknown."""
        return self._request("DELETE", f"/indexer/task/{_segment(task_id)}").status_code == 200

    def has_file(self, partition: str, file_id: str) -> bool:
        path = f"/partition/{_segment(partition)}/file/{_segment(file_id)}"
        response = self._request("GET", path)
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise Down(self.where, f"answered HTTP {response.status_code} for {path}")
        return True

    # the queue

    def queue_info(self) -> QueueInfo:
        """`/queue/info` (admins only: AuthRefused for others)."""
        response = self._request("GET", "/queue/info")
        if response.status_code != 200:
            raise Down(self.where, f"answered HTTP {response.status_code} for /queue/info")
        try:
            return parse_queue_info(_json(response, self.where))
        except Down:
            raise
        except Unavailable as error:
            raise Down(self.where, str(error)) from None

    def active_task_ids(self) -> set[str]:
        """The ids of the tasks OpenRAG has in flight (`/queue/tasks?task_status=active`)."""
        response = self._request("GET", "/queue/tasks", params={"task_status": "active"})
        if response.status_code != 200:
            raise Down(self.where, f"answered HTTP {response.status_code} for /queue/tasks")
        tasks = _json(response, self.where).get("tasks") or []
        return {str(t.get("task_id")) for t in tasks if isinstance(t, dict)}

    def supported(self) -> dict[str, Any]:
        """`/indexer/supported/types`: also how preflight checks that OpenRAG answers."""
        response = self._request("GET", "/indexer/supported/types")
        if response.status_code != 200:
            raise Down(
                self.where, f"answered HTTP {response.status_code} for /indexer/supported/types"
            )
        return _json(response, self.where)


def parse_queue_info(body: dict[str, Any]) -> QueueInfo:
    """A `/queue/info` body; Unavailable when it is not that shape."""
    try:
        workers, tasks = body["workers"], body["tasks"]
        return QueueInfo(
            total_slots=int(workers["total_slots"]),
            pool_size=int(workers.get("pool_size") or 0),
            max_per_actor=int(workers.get("max_per_actor") or 0),
            active=int(tasks["active"]),
            active_statuses={
                str(k): int(v) for k, v in (tasks.get("active_statuses") or {}).items()
            },
            total_completed=int(tasks.get("total_completed") or 0),
            total_cancelled=int(tasks.get("total_cancelled") or 0),
            total_failed=int(tasks.get("total_failed") or 0),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Unavailable("its /queue/info is not the shape its API documents") from None


def detail_of(response: requests.Response) -> str:
    """FastAPI's `{"detail": ...}` as a sentence (a 422's list of problems joined)."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(
            str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail
        )
    text = str(detail) if detail else (response.reason or f"HTTP {response.status_code}")
    return " ".join(text.split())[:MAX_DETAIL]


def _json(response: requests.Response, where: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise Down(where, "answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise Down(where, "answered JSON that is not an object")
    return body


def _segment(text: str) -> str:
    """One path segment, every reserved character escaped (a `%2F` in an id stays an id)."""
    return quote(text, safe="")


def _cause(error: requests.RequestException) -> str:
    text = str(error)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return type(error).__name__
