"""A typed, validated view of the ``.env`` and the one safe way to change it.

OpenRAG (generation A) checks nothing and fails late, deep inside a Ray actor; here every value
it would trip on becomes a :class:`Problem` that names the variable and its line, and an edit
that would add such a problem is refused before anything is written. Each setting is declared
once, as a field of :class:`Settings` with its variable, default, check and description.
"""

from __future__ import annotations

import ipaddress
import math
import re
import shlex
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType, UnionType
from typing import Any, ClassVar, NamedTuple
from urllib.parse import urlsplit

from openrag_tui.config.envfile import EnvFile, EnvFileError
from openrag_tui.config.secrets import mask_value

__all__ = [
    "FIELDS",
    "EnvEditRefused",
    "FieldInfo",
    "Problem",
    "Settings",
    "Severity",
    "edit_problems",
    "is_host",
    "near_keys",
    "set_env_values",
]

_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"<[^<>]*>|\b[xX]{1,3}(?:\.[xX]{1,3}){3}\b")
_HOST_PORT = r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d+)"
_RAY_ADDRESS = re.compile(r"(?:ray://)?" + _HOST_PORT)
_HEAD_ADDRESS = re.compile(_HOST_PORT)
_DASHBOARD_URL = re.compile(
    r"https?://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s/:?#\[\]]+)(?::(?P<port>\d+))?/?"
)
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_VOLUMES = ("DATA_VOLUME", "MODEL_WEIGHTS_VOLUME", "CONFIG_VOLUME")
_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


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

    @property
    def subject(self) -> str:
        """`VARIABLE (line N)`, or the variable alone when it has no line."""
        return f"{self.variable} (line {self.line})" if self.line else self.variable

    @property
    def text(self) -> str:
        """`VARIABLE (line N): sentence`, the way every screen and the CLI print it."""
        return f"{self.subject}: {self.message}"


class EnvEditRefused(EnvFileError):
    """The edit was not written because it would leave the file broken."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(" ".join(p.message for p in self.problems))


class _Invalid(ValueError):
    """A value OpenRAG would trip on; the message becomes the Problem's sentence."""


Check = Callable[[str, str], Any]


def _got(key: str, text: str) -> str:
    """`(got '…')` for a message: the value as the masking rule lets it be shown."""
    return f"(got {mask_value(key, text)!r})"


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
            raise _Invalid(f"{key} must be a whole number of {minimum} or more {_got(key, text)}.")
        return int(number)

    return check


def _gpus(key: str, text: str) -> float:
    """A fraction of one GPU, or a whole number of GPUs: Ray rejects 1.5."""
    number = _positive(key, text)
    if number > 1 and not number.is_integer():
        raise _Invalid(f"{key} above 1 must be a whole number of GPUs {_got(key, text)}.")
    return number


def _positive(key: str, text: str) -> float:
    number = _parse(float, text)
    if number is None or number <= 0:
        raise _Invalid(f"{key} must be a number greater than 0 {_got(key, text)}.")
    return float(number)


def _non_negative(key: str, text: str) -> float:
    number = _parse(float, text)
    if number is None or number < 0:
        raise _Invalid(f"{key} must be a number of 0 or more {_got(key, text)}.")
    return float(number)


def _optional_whole(key: str, text: str) -> int | None:
    return None if not text.strip() else _whole(0)(key, text)


def _optional_non_negative(key: str, text: str) -> float | None:
    return None if not text.strip() else _non_negative(key, text)


def _port_number(key: str, port: float | None, text: str) -> int:
    if port is None or not 1 <= port <= 65535:
        raise _Invalid(f"{key} must use a port from 1 to 65535 {_got(key, text)}.")
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


def is_host(text: str) -> bool:
    """An IP address (v4, or v6 with or without brackets) or an RFC 1123 hostname."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(bare)
        return True
    except ValueError:
        pass
    name = text.removesuffix(".")  # a fully qualified name may end with a dot
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    return all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def _check_host(key: str, host: str, text: str) -> None:
    _no_placeholder(key, text)
    if not is_host(host):
        raise _Invalid(f"{key} must name a host: an IP address or a hostname {_got(key, text)}.")


def _address(pattern: re.Pattern[str], shape: str, allow_auto: bool = False) -> Check:
    def check(key: str, text: str) -> str | None:
        if not text:
            return None
        _no_placeholder(key, text)
        if allow_auto and text == "auto":
            return text
        match = pattern.fullmatch(text)
        if not match:
            raise _Invalid(f"{key} must look like {shape} {_got(key, text)}.")
        _check_host(key, match["host"], text)
        _port_number(key, int(match["port"]), text)
        return text

    return check


def _host(key: str, text: str) -> str:
    _check_host(key, text.strip(), text)
    return text.strip()


def _optional_host(key: str, text: str) -> str | None:
    return _host(key, text) if text.strip() else None


def _url(key: str, text: str) -> str | None:
    if not text.strip():
        return None
    _no_placeholder(key, text)
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Invalid(f"{key} must look like http://host:port/path {_got(key, text)}.")
    _check_host(key, parts.hostname, text)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is not None:
        _port_number(key, port, text)
    return text.strip()


def _dashboard_url(key: str, text: str) -> str | None:
    if not text:
        return None
    _no_placeholder(key, text)
    match = _DASHBOARD_URL.fullmatch(text)
    if not match:
        raise _Invalid(f"{key} must look like http://host:port {_got(key, text)}.")
    _check_host(key, match["host"], text)
    if match["port"]:
        _port_number(key, int(match["port"]), text)
    return text


def _app_url(key: str, text: str) -> str | None:
    """A host, as OpenRAG's .env has it (`localhost`), or a URL some deployments write."""
    if "://" in text:
        return _url(key, text)
    return _optional_host(key, text)


def _text(key: str, text: str) -> str:
    return text


def _collection(key: str, text: str) -> str:
    """Milvus's rule for a collection name: a letter or `_`, then letters, digits and `_`."""
    value = text.strip()
    if not _COLLECTION.fullmatch(value):
        raise _Invalid(
            f"{key} must start with a letter or _ and hold only letters, digits and _, "
            f"at most 255 {_got(key, text)}."
        )
    return value


def _optional_text(key: str, text: str) -> str | None:
    return text or None


def _choice(*allowed: str) -> Check:
    def check(key: str, text: str) -> str:
        value = text.strip()
        if value not in allowed:
            raise _Invalid(f"{key} must be one of {', '.join(allowed)} {_got(key, text)}.")
        return value

    return check


def _shell_words(key: str, text: str) -> str | None:
    try:
        shlex.split(text)
    except ValueError as exc:
        raise _Invalid(f"{key} cannot be split into arguments: {exc} {_got(key, text)}.") from None
    return text or None


_ray_address = _address(_RAY_ADDRESS, "ray://host:port, host:port or auto", allow_auto=True)
_head_address = _address(_HEAD_ADDRESS, "host:port")


def setting(env: str, default: Any, check: Check, description: str) -> Any:
    """A field of Settings: its variable, OpenRAG's default, its check and one sentence."""
    return field(default=default, metadata={"env": env, "check": check, "doc": description})


class FieldInfo(NamedTuple):
    """One variable as the editor and ``env show`` present it."""

    field: str
    type: type
    default: Any
    description: str


def _no_line(key: str) -> int | None:
    return None


# fmt: off
@dataclass(frozen=True)
class Settings:
    """Every variable the panel cares about, typed, with OpenRAG's defaults where unset.

    `raw` holds every value of the file as python-dotenv reads it (interpolated, as OpenRAG sees
    it); `invalid` the text of each variable whose value was refused (its default is used, and
    screens show the text marked invalid rather than the default as if the file said so).
    """

    FIELDS: ClassVar[dict[str, FieldInfo]]

    ray_num_gpus: float = setting(
        "RAY_NUM_GPUS", 0.1, _gpus, "GPU share reserved by each indexer actor.")
    ray_pool_size: int = setting(
        "RAY_POOL_SIZE", 1, _whole(0), "Number of indexer actors.")
    ray_max_tasks_per_worker: int = setting(
        "RAY_MAX_TASKS_PER_WORKER", 5, _whole(1), "Concurrent tasks per indexer actor (slots).")
    marker_pool_size: int = setting(
        "MARKER_POOL_SIZE", 1, _whole(0), "Number of Marker PDF actors (typically one per node).")
    marker_num_gpus: float = setting(
        "MARKER_NUM_GPUS", 0.01, _gpus, "GPU share reserved by each Marker actor.")
    marker_max_processes: int = setting(
        "MARKER_MAX_PROCESSES", 2, _whole(1),
        "Subprocesses per Marker actor, i.e. PDFs converted at once per actor.")
    marker_min_processes: int = setting(
        "MARKER_MIN_PROCESSES", 1, _whole(0),
        "Fewer live subprocesses than this resets a Marker actor's pool.")
    marker_max_tasks_per_child: int = setting(
        "MARKER_MAX_TASKS_PER_CHILD", 10, _whole(1),
        "PDFs a Marker subprocess converts before it is recycled.")
    ray_address: str | None = setting(
        "RAY_ADDRESS", None, _ray_address,
        "How the OpenRAG app reaches Ray, usually ray://HEAD:10001.")
    ray_head_address: str | None = setting(
        "RAY_HEAD_ADDRESS", None, _head_address,
        "Head node GCS address (HEAD:6379) that workers join.")
    head_node_ip: str | None = setting(
        "HEAD_NODE_IP", None, _optional_host, "Head node IP used by ray start --head.")
    ray_dashboard_port: int = setting(
        "RAY_DASHBOARD_PORT", 8265, _port, "Ray dashboard HTTP port.")
    data_volume: str = setting(
        "DATA_VOLUME", "./data", _text, "Shared folder of uploaded files.")
    model_weights_volume: str = setting(
        "MODEL_WEIGHTS_VOLUME", "~/.cache/huggingface", _text, "Shared model weights cache.")
    config_volume: str = setting(
        "CONFIG_VOLUME", "./.hydra_config", _text, "Shared Hydra configuration folder.")
    embedder_base_url: str | None = setting(
        "EMBEDDER_BASE_URL", None, _url,
        "OpenAI-compatible embedder endpoint, e.g. http://vllm:8000/v1.")
    embedder_model_name: str | None = setting(
        "EMBEDDER_MODEL_NAME", None, _optional_text, "Embedding model name.")
    embedder_api_key: str | None = setting(
        "EMBEDDER_API_KEY", None, _optional_text, "Embedder API key.")
    vdb_host: str | None = setting(
        "VDB_HOST", None, _optional_host, "Milvus host (unset: this machine).")
    vdb_port: int = setting(
        "VDB_PORT", 19530, _port, "Milvus port.")
    shared_env: str | None = setting(
        "SHARED_ENV", None, _optional_text, "Path of this shared .env on every node.")
    dashboard_url: str | None = setting(
        "OPENRAG_TUI_DASHBOARD_URL", None, _dashboard_url,
        "Ray dashboard URL the panel reads (default: from the head address).")
    namespace: str = setting(
        "OPENRAG_TUI_NAMESPACE", "openrag", _text, "Ray namespace of OpenRAG's actors.")
    refresh_seconds: float = setting(
        "OPENRAG_TUI_REFRESH_SECONDS", 2.0, _positive, "Seconds between panel refreshes.")
    history_minutes: float = setting(
        "OPENRAG_TUI_HISTORY_MINUTES", 15.0, _positive,
        "Minutes of GPU and indexing history the panel keeps (sparklines, GPU memory per actor).")
    pool_num_cpus: float = setting(
        "OPENRAG_TUI_POOL_NUM_CPUS", 0.1, _non_negative,
        "CPUs reserved by each pool actor the panel starts.")
    cluster_config: str | None = setting(
        "OPENRAG_TUI_CLUSTER_CONFIG", None, _optional_text,
        "cluster.yaml for ray up/down (relative to this file); unset: a local head.")
    local_gpus: int | None = setting(
        "OPENRAG_TUI_LOCAL_GPUS", None, _whole(0),
        "GPUs a local head declares (for machines without GPUs); unset: Ray detects.")
    dashboard_host: str = setting(
        "OPENRAG_TUI_DASHBOARD_HOST", "127.0.0.1", _host,
        "Address a local head's dashboard binds to.")
    ray_start_args: str | None = setting(
        "OPENRAG_TUI_RAY_START_ARGS", None, _shell_words, "Extra arguments for ray start --head.")
    pdf_loader: str = setting(
        "PDF_LOADER", "pdfium", _choice("pdfium", "marker", "marker-text"),
        "PDF engine: pdfium (text layer, no weights), marker (models) or marker-text (no models).")
    chunk_size: int = setting(
        "OPENRAG_TUI_CHUNK_SIZE", 1000, _whole(1), "Characters per chunk when indexing.")
    chunk_overlap: int = setting(
        "OPENRAG_TUI_CHUNK_OVERLAP", 200, _whole(0),
        "Characters shared by consecutive chunks (less than the chunk size).")
    max_file_mb: int = setting(
        "OPENRAG_TUI_MAX_FILE_MB", 200, _whole(1),
        "Largest file a batch reads, in MB; a larger one fails at once as too large.")
    embedder: str | None = setting(
        "OPENRAG_TUI_EMBEDDER", None, _choice("wordllama", "openai"),
        "wordllama (built in, no download) or openai (EMBEDDER_BASE_URL); unset: openai when "
        "EMBEDDER_BASE_URL is set, else wordllama.")
    sink: str = setting(
        "OPENRAG_TUI_SINK", "milvus", _choice("milvus", "files"),
        "Where chunks go: milvus (the vector index at VDB_HOST:VDB_PORT) or files.")
    collection: str = setting(
        "OPENRAG_TUI_COLLECTION", "openrag_tui", _collection,
        "Milvus collection the chunks go to.")
    target: str = setting(
        "OPENRAG_TUI_TARGET", "pools", _choice("pools", "openrag"),
        "Where batches are indexed: pools (ours) or openrag (a running OpenRAG, by HTTP).")
    openrag_url: str | None = setting(
        "OPENRAG_TUI_OPENRAG_URL", None, _url,
        "OpenRAG's HTTP API; unset: http://APP_URL:APP_PORT.")
    app_url: str | None = setting(
        "APP_URL", None, _app_url, "Host of the OpenRAG app (with APP_PORT).")
    app_port: int = setting(
        "APP_PORT", 8080, _port, "Port of the OpenRAG app.")
    auth_token: str | None = setting(
        "AUTH_TOKEN", None, _optional_text,
        "OpenRAG's bearer token, sent on every request to it when set.")
    ledger: str | None = setting(
        "OPENRAG_TUI_LEDGER", None, _optional_text,
        "Indexing ledger (SQLite); unset: DATA_VOLUME/.openrag-tui/ledger.sqlite.")
    autopilot: str = setting(
        "OPENRAG_TUI_AUTOPILOT", "off", _choice("on", "off"),
        "on: our pools follow the ledger's backlog within the limits below; off: sizes are "
        "set by hand only.")
    autopilot_indexer_min: int = setting(
        "OPENRAG_TUI_AUTOPILOT_INDEXER_MIN", 1, _whole(0),
        "Fewest indexer actors the autopilot keeps.")
    autopilot_indexer_max: int | None = setting(
        "OPENRAG_TUI_AUTOPILOT_INDEXER_MAX", None, _optional_whole,
        "Most indexer actors the autopilot starts; unset: as many as the budget and the "
        "cluster allow.")
    autopilot_marker_min: int = setting(
        "OPENRAG_TUI_AUTOPILOT_MARKER_MIN", 0, _whole(0),
        "Fewest marker actors the autopilot keeps.")
    autopilot_marker_max: int | None = setting(
        "OPENRAG_TUI_AUTOPILOT_MARKER_MAX", None, _optional_whole,
        "Most marker actors the autopilot starts; unset: as the budget and cluster allow.")
    autopilot_gpu_budget: float | None = setting(
        "OPENRAG_TUI_AUTOPILOT_GPU_BUDGET", None, _optional_non_negative,
        "GPUs both pools may reserve together when the autopilot grows them; unset: no "
        "budget but the cluster's room.")
    autopilot_idle_seconds: float = setting(
        "OPENRAG_TUI_AUTOPILOT_IDLE_SECONDS", 300.0, _non_negative,
        "Seconds with no file waiting before the autopilot shrinks a pool to its minimum.")
    problems: tuple[Problem, ...] = ()
    raw: Mapping[str, str | None] = field(default_factory=dict, hash=False)
    invalid: Mapping[str, str] = field(default_factory=dict, hash=False)
# fmt: on

    @classmethod
    def from_envfile(cls, env: EnvFile) -> Settings:
        """Settings of a file; relative volume paths are taken from the file's folder."""
        found = cls.from_values(env.values, env.line_of, base_dir=env.path.parent)
        problems = (*_syntax_findings(env), *found.problems)
        return replace(found, problems=tuple(sorted(problems, key=_file_order)))

    @classmethod
    def from_values(
        cls,
        values: Mapping[str, str | None],
        line_of: Callable[[str], int | None] = _no_line,
        base_dir: Path | None = None,
    ) -> Settings:
        """Never raises: a bad value keeps its default and becomes an ERROR problem."""
        typed: dict[str, Any] = {}
        invalid: dict[str, str] = {}
        problems: list[Problem] = []
        for env, info in FIELDS.items():
            text = values.get(env)
            if text is None:
                continue
            try:
                typed[info.field] = _CHECKS[env](env, text)
            except _Invalid as exc:
                problems.append(Problem(env, line_of(env), str(exc), Severity.ERROR))
                invalid[env] = text
        problems += _cross_field_problems(typed, set(invalid), line_of)
        problems += _volume_warnings(values, base_dir or Path.cwd(), line_of)
        problems.sort(key=_file_order)
        return cls(
            **typed,
            problems=tuple(problems),
            raw=MappingProxyType(dict(values)),
            invalid=MappingProxyType(invalid),
        )

    @property
    def embedder_kind(self) -> str:
        """`OPENRAG_TUI_EMBEDDER`, else openai when the .env names an endpoint, else wordllama."""
        return self.embedder or ("openai" if self.embedder_base_url else "wordllama")

    @property
    def vdb_uri(self) -> str:
        """Where Milvus is: `http://VDB_HOST:VDB_PORT`, this machine when VDB_HOST is unset."""
        host = self.vdb_host or "127.0.0.1"
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{host}:{self.vdb_port}"

    @property
    def openrag_api(self) -> str:
        """Where OpenRAG's API is: OPENRAG_TUI_OPENRAG_URL, else http://APP_URL:APP_PORT."""
        if self.openrag_url:
            return self.openrag_url.rstrip("/")
        host = self.app_url or "localhost"
        if "://" in host:  # a URL: its port, else APP_PORT
            parts = urlsplit(host)
            return host.rstrip("/") if parts.port else f"{host.rstrip('/')}:{self.app_port}"
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"http://{host}:{self.app_port}"

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


def _field_table() -> tuple[dict[str, FieldInfo], dict[str, Check]]:
    hints = typing.get_type_hints(Settings)
    table: dict[str, FieldInfo] = {}
    checks: dict[str, Check] = {}
    for item in fields(Settings):
        if "env" not in item.metadata:
            continue
        kind = hints[item.name]
        if isinstance(kind, UnionType):  # `str | None`: the type is the one that is not None
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        env = item.metadata["env"]
        table[env] = FieldInfo(item.name, kind, item.default, item.metadata["doc"])
        checks[env] = item.metadata["check"]
    return table, checks


FIELDS, _CHECKS = _field_table()
Settings.FIELDS = FIELDS
_ENV_KEYS = {info.field: env for env, info in FIELDS.items()}


def _file_order(problem: Problem) -> tuple[bool, int]:
    return (problem.line is None, problem.line or 0)


def _syntax_findings(env: EnvFile) -> list[Problem]:
    """Lines python-dotenv cannot read (OpenRAG silently skips them) and keys with no `=`."""
    found = [
        Problem(
            key or f"line {line}",
            line,
            f"line {line} cannot be parsed by python-dotenv (an unclosed quote, or no `=`?): "
            "OpenRAG ignores it.",
            Severity.ERROR,
        )
        for line, key in env.unparsable
    ]
    found += [
        Problem(
            key,
            env.line_of(key),
            f"{key} has no `=`: python-dotenv reads it as unset.",
            Severity.WARNING,
        )
        for key in env.bare_keys
    ]
    return found


def _cross_field_problems(
    typed: Mapping[str, Any], bad: set[str], line_of: Callable[[str], int | None]
) -> list[Problem]:
    """Settings that are each valid but wrong together."""
    problems = _marker_processes_problems(typed, bad, line_of)
    endpoint = typed.get("embedder_base_url") or "EMBEDDER_BASE_URL" in bad
    if typed.get("embedder") == "openai" and not endpoint:
        message = "OPENRAG_TUI_EMBEDDER=openai needs EMBEDDER_BASE_URL (the endpoint)."
        key = "OPENRAG_TUI_EMBEDDER"
        problems.append(Problem(key, line_of(key), message, Severity.ERROR))
    for pool in ("indexer", "marker"):
        low, high = typed.get(f"autopilot_{pool}_min"), typed.get(f"autopilot_{pool}_max")
        if low is not None and high is not None and low > high:
            key = f"OPENRAG_TUI_AUTOPILOT_{pool.upper()}_MAX"
            message = f"{key}={high} is below OPENRAG_TUI_AUTOPILOT_{pool.upper()}_MIN={low}."
            problems.append(Problem(key, line_of(key), message, Severity.ERROR))
    return problems


def _marker_processes_problems(
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


# Editing


def edit_problems(
    env: EnvFile, updates: Mapping[str, str], allow_new: bool = True
) -> list[Problem]:
    """Why `updates` would be refused (empty: acceptable), without touching the file.

    With `allow_new` False, a key the file lacks and the panel does not know is refused (one
    edit away from a known key, with "did you mean"): adding one needs the caller's go-ahead."""
    return (
        _syntax_problems(env, updates)
        or _new_key_problems(env, updates, allow_new)
        or _new_errors(env, updates)
    )


def set_env_values(
    env: EnvFile,
    updates: Mapping[str, str],
    allow_new: bool = True,
    expected: Mapping[str, str | None] | None = None,
) -> EnvFile:
    """The one way to edit: refuse what would break the file, else save and re-read it.

    The edit is applied to the file as it is when saved (writers take turns, no update is lost)
    and validated against that; `expected` is `EnvFile.save`'s (by default the updated keys
    must still hold what `env` read). A file that did not exist when read is not created: the
    shared .env is made by hand."""
    if not env.existed:
        raise EnvFileError(f"{env.path} does not exist: create it first; nothing was written.")

    def check(current: EnvFile, wanted: Mapping[str, str]) -> None:
        refused = edit_problems(current, wanted, allow_new)
        if refused:
            raise EnvEditRefused(refused)

    check(env, updates)  # bad input is refused before waiting for a turn
    return env.save(updates, expected=expected, check=check)


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


def _new_key_problems(env: EnvFile, updates: Mapping[str, str], allow_new: bool) -> list[Problem]:
    if allow_new:
        return []
    problems = []
    for key in updates:
        if key in FIELDS or key in env.raw_values:
            continue
        near = near_keys(key)
        if near:
            message = f"{key} is not a known setting: did you mean {' or '.join(near)}?"
        else:
            message = f"{key} is neither in {env.path.name} nor a known setting"
        message += " Nothing was written (pass --add to add it as a new key)."
        problems.append(Problem(key, None, message, Severity.ERROR))
    return problems


def near_keys(key: str) -> list[str]:
    """Known variables one edit away from `key` (a typo, a swapped pair, another case)."""
    upper = key.upper()
    return [known for known in FIELDS if known != key and _one_edit(upper, known.upper())]


def _one_edit(a: str, b: str) -> bool:
    """Equal, or one insertion, deletion, substitution or swap of neighbours apart."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return True
        i = diffs[0]
        return len(diffs) == 2 and diffs[1] == i + 1 and a[i] == b[i + 1] and a[i + 1] == b[i]
    short, long = sorted((a, b), key=len)
    i = next((i for i, (x, y) in enumerate(zip(short, long, strict=False)) if x != y), len(short))
    return short[i:] == long[i + 1 :]


def _new_errors(env: EnvFile, updates: Mapping[str, str]) -> list[Problem]:
    """Errors on the keys being set, or elsewhere but introduced by this edit.

    Lines are those of the file as it is (None for a key it does not have yet).
    """
    before = {(p.variable, p.message) for p in Settings.from_envfile(env).errors}
    after = Settings.from_envfile(EnvFile(env.path, env.with_updates(updates))).errors
    new = [p for p in after if p.variable in updates or (p.variable, p.message) not in before]
    return [replace(p, line=env.line_of(p.variable)) for p in new]
