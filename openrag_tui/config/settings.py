"""A typed, validated view of the ``.env`` and the one safe way to change it.

OpenRAG (generation A) checks nothing and fails late, deep inside a Ray actor; here every value
it would trip on becomes a :class:`Problem` that names the variable and its line, and an edit
that would add such a problem is refused before anything is written.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple
from urllib.parse import urlsplit

from openrag_tui.config.envfile import EnvFile, EnvFileError

__all__ = [
    "FIELDS",
    "EnvEditRefused",
    "FieldInfo",
    "Problem",
    "Settings",
    "Severity",
    "edit_problems",
    "is_secret",
    "mask_value",
    "set_env_values",
]

MASK = "••••••"
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")
_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"<[^<>]*>|\b[xX]{1,3}(?:\.[xX]{1,3}){3}\b")
_HOST_PORT = r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d+)"
_RAY_ADDRESS = re.compile(r"(?:ray://)?" + _HOST_PORT)
_HEAD_ADDRESS = re.compile(_HOST_PORT)
_DASHBOARD_URL = re.compile(r"https?://(?:\[[0-9A-Fa-f:.]+\]|[^\s/:?#\[\]]+)(?::(?P<port>\d+))?/?")
_VOLUMES = ("DATA_VOLUME", "MODEL_WEIGHTS_VOLUME", "CONFIG_VOLUME")


class Severity(StrEnum):
    """ERROR means OpenRAG would fail or misbehave; WARNING means it is worth a look."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding about one variable, as a plain sentence the operator can act on."""

    variable: str
    line: int | None
    message: str
    severity: Severity


class EnvEditRefused(EnvFileError):
    """The edit was not written because it would leave the file broken."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(" ".join(p.message for p in self.problems))


class _Invalid(ValueError):
    """A value OpenRAG would trip on; the message becomes the Problem's sentence."""


Check = Callable[[str, str], Any]


def _parse(kind: type[int] | type[float], text: str) -> int | float | None:
    """``int``/``float`` of the stripped text, without NaN and infinities."""
    try:
        number = kind(text.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _whole(minimum: int) -> Check:
    def check(key: str, text: str) -> int:
        number = _parse(int, text)
        if number is None or number < minimum:
            raise _Invalid(f"{key} must be a whole number of {minimum} or more (got {text!r}).")
        return int(number)

    return check


def _gpus(key: str, text: str) -> float:
    """A fraction of one GPU, or a whole number of GPUs: Ray rejects 1.5."""
    number = _positive(key, text)
    if number > 1 and not number.is_integer():
        raise _Invalid(f"{key} above 1 must be a whole number of GPUs (got {text!r}).")
    return number


def _positive(key: str, text: str) -> float:
    number = _parse(float, text)
    if number is None or number <= 0:
        raise _Invalid(f"{key} must be a number greater than 0 (got {text!r}).")
    return float(number)


def _non_negative(key: str, text: str) -> float:
    number = _parse(float, text)
    if number is None or number < 0:
        raise _Invalid(f"{key} must be a number of 0 or more (got {text!r}).")
    return float(number)


def _port_number(key: str, port: float | None, text: str) -> int:
    if port is None or not 1 <= port <= 65535:
        raise _Invalid(f"{key} must use a port from 1 to 65535 (got {text!r}).")
    return int(port)


def _port(key: str, text: str) -> int:
    return _port_number(key, _parse(int, text), text)


def _no_placeholder(key: str, text: str) -> None:
    """The guide ships ``X.X.X.X`` and ``<HOST-IP>``; copied as-is they point nowhere."""
    found = _PLACEHOLDER.search(text)
    if found:
        message = (
            f"{key} still holds the placeholder {found.group()!r}: replace it with a real host."
        )
        raise _Invalid(message)


def _address(pattern: re.Pattern[str], shape: str, allow_auto: bool = False) -> Check:
    def check(key: str, text: str) -> str | None:
        if not text:
            return None
        _no_placeholder(key, text)
        if allow_auto and text == "auto":
            return text
        match = pattern.fullmatch(text)
        if not match:
            raise _Invalid(f"{key} must look like {shape} (got {text!r}).")
        _port_number(key, int(match["port"]), text)
        return text

    return check


def _host(key: str, text: str) -> str:
    _no_placeholder(key, text)
    return text


def _optional_host(key: str, text: str) -> str | None:
    return _host(key, text) or None


def _url(key: str, text: str) -> str:
    _no_placeholder(key, text)
    try:
        port = urlsplit(text).port
    except ValueError:
        port = 0
    if port is not None:
        _port_number(key, port, text)
    return text


def _dashboard_url(key: str, text: str) -> str | None:
    if not text:
        return None
    _no_placeholder(key, text)
    match = _DASHBOARD_URL.fullmatch(text)
    if not match:
        raise _Invalid(f"{key} must look like http://host:port (got {text!r}).")
    if match["port"]:
        _port_number(key, int(match["port"]), text)
    return text


def _text(key: str, text: str) -> str:
    return text


def _optional_text(key: str, text: str) -> str | None:
    return text or None


def _choice(*allowed: str) -> Check:
    def check(key: str, text: str) -> str:
        value = text.strip()
        if value not in allowed:
            raise _Invalid(f"{key} must be one of {', '.join(allowed)} (got {text!r}).")
        return value

    return check


def _shell_words(key: str, text: str) -> str | None:
    try:
        shlex.split(text)
    except ValueError as exc:
        raise _Invalid(f"{key} cannot be split into arguments: {exc} (got {text!r}).") from None
    return text or None


class FieldInfo(NamedTuple):
    """One variable as the editor and ``env show`` present it."""

    field: str
    type: type
    default: Any
    description: str


def _table(
    *rows: tuple[str, str, type, Any, Check, str],
) -> tuple[dict[str, FieldInfo], dict[str, Check]]:
    fields = {env: FieldInfo(name, kind, default, doc) for env, name, kind, default, _, doc in rows}
    checks = {row[0]: row[4] for row in rows}
    return fields, checks


_ray_address = _address(_RAY_ADDRESS, "ray://host:port, host:port or auto", allow_auto=True)
_head_address = _address(_HEAD_ADDRESS, "host:port")

# fmt: off
FIELDS, _CHECKS = _table(
    ("RAY_NUM_GPUS", "ray_num_gpus", float, 0.1, _gpus,
     "GPU share reserved by each indexer actor."),
    ("RAY_POOL_SIZE", "ray_pool_size", int, 1, _whole(0),
     "Number of indexer actors."),
    ("RAY_MAX_TASKS_PER_WORKER", "ray_max_tasks_per_worker", int, 5, _whole(1),
     "Concurrent tasks per indexer actor (slots)."),
    ("MARKER_POOL_SIZE", "marker_pool_size", int, 1, _whole(0),
     "Number of Marker PDF actors (typically one per node)."),
    ("MARKER_NUM_GPUS", "marker_num_gpus", float, 0.01, _gpus,
     "GPU share reserved by each Marker actor."),
    ("MARKER_MAX_PROCESSES", "marker_max_processes", int, 2, _whole(1),
     "Subprocesses per Marker actor, i.e. PDFs converted at once per actor."),
    ("MARKER_MIN_PROCESSES", "marker_min_processes", int, 1, _whole(0),
     "Fewer live subprocesses than this resets a Marker actor's pool."),
    ("MARKER_MAX_TASKS_PER_CHILD", "marker_max_tasks_per_child", int, 10, _whole(1),
     "PDFs a Marker subprocess converts before it is recycled."),
    ("RAY_ADDRESS", "ray_address", str, None, _ray_address,
     "How the OpenRAG app reaches Ray, usually ray://HEAD:10001."),
    ("RAY_HEAD_ADDRESS", "ray_head_address", str, None, _head_address,
     "Head node GCS address (HEAD:6379) that workers join."),
    ("HEAD_NODE_IP", "head_node_ip", str, None, _optional_host,
     "Head node IP used by ray start --head."),
    ("RAY_DASHBOARD_PORT", "ray_dashboard_port", int, 8265, _port,
     "Ray dashboard HTTP port."),
    ("DATA_VOLUME", "data_volume", str, "./data", _text,
     "Shared folder of uploaded files."),
    ("MODEL_WEIGHTS_VOLUME", "model_weights_volume", str, "~/.cache/huggingface", _text,
     "Shared model weights cache."),
    ("CONFIG_VOLUME", "config_volume", str, "./.hydra_config", _text,
     "Shared Hydra configuration folder."),
    ("EMBEDDER_BASE_URL", "embedder_base_url", str, "http://vllm:8000/v1", _url,
     "OpenAI-compatible embedder endpoint."),
    ("EMBEDDER_MODEL_NAME", "embedder_model_name", str, None, _optional_text,
     "Embedding model name."),
    ("EMBEDDER_API_KEY", "embedder_api_key", str, None, _optional_text,
     "Embedder API key."),
    ("VDB_HOST", "vdb_host", str, "milvus", _host,
     "Milvus host."),
    ("VDB_PORT", "vdb_port", int, 19530, _port,
     "Milvus port."),
    ("SHARED_ENV", "shared_env", str, None, _optional_text,
     "Path of this shared .env on every node."),
    ("OPENRAG_TUI_DASHBOARD_URL", "dashboard_url", str, None, _dashboard_url,
     "Ray dashboard URL the panel reads (default: from the head address)."),
    ("OPENRAG_TUI_NAMESPACE", "namespace", str, "openrag", _text,
     "Ray namespace of OpenRAG's actors."),
    ("OPENRAG_TUI_REFRESH_SECONDS", "refresh_seconds", float, 2.0, _positive,
     "Seconds between panel refreshes."),
    ("OPENRAG_TUI_POOL_NUM_CPUS", "pool_num_cpus", float, 0.1, _non_negative,
     "CPUs reserved by each pool actor the panel starts."),
    ("OPENRAG_TUI_CLUSTER_CONFIG", "cluster_config", str, None, _optional_text,
     "cluster.yaml for ray up/down (relative to this file); unset: a local head."),
    ("OPENRAG_TUI_LOCAL_GPUS", "local_gpus", int, None, _whole(0),
     "GPUs a local head declares (for machines without GPUs); unset: Ray detects."),
    ("OPENRAG_TUI_DASHBOARD_HOST", "dashboard_host", str, "127.0.0.1", _host,
     "Address a local head's dashboard binds to."),
    ("OPENRAG_TUI_RAY_START_ARGS", "ray_start_args", str, None, _shell_words,
     "Extra arguments for ray start --head."),
    ("PDF_LOADER", "pdf_loader", str, "pdfium", _choice("pdfium", "marker", "marker-text"),
     "PDF engine: pdfium (text layer, no weights), marker (models) or marker-text (no models)."),
    ("OPENRAG_TUI_CHUNK_SIZE", "chunk_size", int, 1000, _whole(1),
     "Characters per chunk when indexing."),
    ("OPENRAG_TUI_CHUNK_OVERLAP", "chunk_overlap", int, 200, _whole(0),
     "Characters shared by consecutive chunks (less than the chunk size)."),
    ("OPENRAG_TUI_LEDGER", "ledger", str, None, _optional_text,
     "Indexing ledger (SQLite); unset: DATA_VOLUME/.openrag-tui/ledger.sqlite."),
)
# fmt: on
_ENV_KEYS = {info.field: env for env, info in FIELDS.items()}


def _no_line(key: str) -> int | None:
    return None


@dataclass(frozen=True)
class Settings:
    """Every variable the panel cares about, typed, with OpenRAG's defaults where unset."""

    FIELDS: ClassVar[dict[str, FieldInfo]] = FIELDS

    ray_num_gpus: float = 0.1
    ray_pool_size: int = 1
    ray_max_tasks_per_worker: int = 5
    marker_pool_size: int = 1
    marker_num_gpus: float = 0.01
    marker_max_processes: int = 2
    marker_min_processes: int = 1
    marker_max_tasks_per_child: int = 10
    ray_address: str | None = None
    ray_head_address: str | None = None
    head_node_ip: str | None = None
    ray_dashboard_port: int = 8265
    data_volume: str = "./data"
    model_weights_volume: str = "~/.cache/huggingface"
    config_volume: str = "./.hydra_config"
    embedder_base_url: str = "http://vllm:8000/v1"
    embedder_model_name: str | None = None
    embedder_api_key: str | None = None
    vdb_host: str = "milvus"
    vdb_port: int = 19530
    shared_env: str | None = None
    dashboard_url: str | None = None
    namespace: str = "openrag"
    refresh_seconds: float = 2.0
    pool_num_cpus: float = 0.1
    cluster_config: str | None = None
    local_gpus: int | None = None
    dashboard_host: str = "127.0.0.1"
    ray_start_args: str | None = None
    pdf_loader: str = "pdfium"
    chunk_size: int = 1000
    chunk_overlap: int = 200
    ledger: str | None = None
    problems: tuple[Problem, ...] = ()
    raw: Mapping[str, str | None] = field(default_factory=dict, hash=False)

    @classmethod
    def from_envfile(cls, env: EnvFile) -> Settings:
        """Settings of a file; relative volume paths are taken from the file's folder."""
        return cls.from_values(env.values, env.line_of, base_dir=env.path.parent)

    @classmethod
    def from_values(
        cls,
        values: Mapping[str, str | None],
        line_of: Callable[[str], int | None] = _no_line,
        base_dir: Path | None = None,
    ) -> Settings:
        """Never raises: a bad value keeps its default and becomes an ERROR problem."""
        typed: dict[str, Any] = {}
        problems: list[Problem] = []
        for env, info in FIELDS.items():
            text = values.get(env)
            if text is None:
                continue
            try:
                typed[info.field] = _CHECKS[env](env, text)
            except _Invalid as exc:
                problems.append(Problem(env, line_of(env), str(exc), Severity.ERROR))
        bad = {p.variable for p in problems}
        problems += _cross_field_problems(typed, bad, line_of)
        problems += _volume_warnings(values, base_dir or Path.cwd(), line_of)
        problems.sort(key=lambda p: (p.line is None, p.line or 0))  # file order reads best
        return cls(**typed, problems=tuple(problems), raw=MappingProxyType(dict(values)))

    @staticmethod
    def env_key(field_name: str) -> str:
        """The variable behind a field, e.g. ``ray_num_gpus`` -> ``RAY_NUM_GPUS``."""
        return _ENV_KEYS[field_name]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]


def _cross_field_problems(
    typed: Mapping[str, Any], bad: set[str], line_of: Callable[[str], int | None]
) -> list[Problem]:
    """A pool that must keep more subprocesses than it may start resets forever."""
    if bad & {"MARKER_MIN_PROCESSES", "MARKER_MAX_PROCESSES"}:
        return []
    low = typed.get("marker_min_processes", FIELDS["MARKER_MIN_PROCESSES"].default)
    high = typed.get("marker_max_processes", FIELDS["MARKER_MAX_PROCESSES"].default)
    if low <= high:
        return []
    message = f"MARKER_MIN_PROCESSES ({low}) must not exceed MARKER_MAX_PROCESSES ({high})."
    return [
        Problem("MARKER_MIN_PROCESSES", line_of("MARKER_MIN_PROCESSES"), message, Severity.ERROR)
    ]


def _volume_warnings(
    values: Mapping[str, str | None], base_dir: Path, line_of: Callable[[str], int | None]
) -> list[Problem]:
    """A missing shared folder is often only mounted on the nodes, hence a warning."""
    problems = []
    for env in _VOLUMES:
        text = values.get(env)
        if not text:
            continue
        path = Path(text).expanduser()
        if not (base_dir / path).exists():
            message = f"{env} is {text!r}, which does not exist on this machine."
            problems.append(Problem(env, line_of(env), message, Severity.WARNING))
    return problems


def edit_problems(env: EnvFile, updates: Mapping[str, str]) -> list[Problem]:
    """Why `updates` would be refused (empty: acceptable), without touching the file."""
    return _syntax_problems(env, updates) or _new_errors(env, updates)


def set_env_values(env: EnvFile, updates: Mapping[str, str]) -> EnvFile:
    """The one way to edit: refuse what would break the file, else save and re-read it."""
    refused = edit_problems(env, updates)
    if refused:
        raise EnvEditRefused(refused)
    return env.save(updates)


def _syntax_problems(env: EnvFile, updates: Mapping[str, str]) -> list[Problem]:
    problems = []
    for key, value in updates.items():
        if not _KEY_NAME.fullmatch(key):
            message = (
                f"{key!r} is not a valid variable name (letters, digits and _, no leading digit)."
            )
        elif "\n" in value or "\r" in value:
            message = f"{key} cannot contain a line break."
        else:
            continue
        problems.append(Problem(key, env.line_of(key), message, Severity.ERROR))
    return problems


def _new_errors(env: EnvFile, updates: Mapping[str, str]) -> list[Problem]:
    """Errors on the keys being set, or elsewhere but introduced by this edit.

    Lines are those of the file as it is (None for a key it does not have yet).
    """
    before = {(p.variable, p.message) for p in Settings.from_envfile(env).errors}
    after = Settings.from_envfile(EnvFile(env.path, env.with_updates(updates))).errors
    new = [p for p in after if p.variable in updates or (p.variable, p.message) not in before]
    return [replace(p, line=env.line_of(p.variable)) for p in new]


def is_secret(key: str) -> bool:
    """Whether a variable's value must not be shown on screen."""
    upper = key.upper()
    return any(word in upper for word in _SECRET_WORDS)


def mask_value(key: str, value: str | None) -> str | None:
    """The value as it may be displayed: secrets become a fixed mask that leaks no length."""
    return MASK if value and is_secret(key) else value
