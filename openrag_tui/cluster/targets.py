"""Which cluster `up` and `down` act on, and the exact Ray commands for it, from the .env.

Two kinds: a head started on this machine (`ray start --head` / `ray stop`) and a cluster
described by a cluster.yaml (`ray up` / `ray down`). Everything here is decided before any
process runs, so a bad path, bad YAML or a bad value is one sentence and nothing is touched.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

from openrag_tui.config import Settings

#: the panel's own settings this module reads (typed in config.Settings)
CLUSTER_CONFIG_KEY = Settings.env_key("cluster_config")
LOCAL_GPUS_KEY = Settings.env_key("local_gpus")
#: how long `ray up` waits for SSH to a node (Ray's own variable; Ray's default is 900 s)
SSH_WAIT_KEY = "AUTOSCALER_NODE_START_WAIT_S"
DEFAULT_SSH_WAIT_S = 120.0
DEFAULT_GCS_PORT = 6379
#: plain output: no colours, no spinners, one record per line
LOG_FLAGS = ("--log-style", "record", "--log-color", "false")
#: the .env variables a local head is started from
_LOCAL_KEYS = (
    "HEAD_NODE_IP",
    "RAY_HEAD_ADDRESS",
    "RAY_DASHBOARD_PORT",
    "RAY_ADDRESS",
    LOCAL_GPUS_KEY,
    "OPENRAG_TUI_DASHBOARD_HOST",
    "OPENRAG_TUI_RAY_START_ARGS",
)


class LifecycleError(Exception):
    """The start or stop cannot be planned; the message is one sentence for the operator."""


@dataclass(frozen=True)
class LocalHead:
    """A head node started on this machine with `ray start --head`."""

    port: int
    dashboard_host: str
    dashboard_port: int
    node_ip: str | None = None
    client_port: int | None = None
    num_gpus: int | None = None
    extra_args: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return "the local Ray head"

    def ports(self) -> dict[int, str]:
        """The ports it will listen on, with the variable each comes from."""
        ports = {self.port: "RAY_HEAD_ADDRESS", self.dashboard_port: "RAY_DASHBOARD_PORT"}
        if self.client_port is not None:
            ports[self.client_port] = "RAY_ADDRESS"
        return ports

    def start_argv(self, ray: str) -> list[str]:
        argv = [ray, "start", "--head", "--port", str(self.port)]
        argv += ["--dashboard-host", self.dashboard_host]
        argv += ["--dashboard-port", str(self.dashboard_port)]
        if self.node_ip:
            argv += ["--node-ip-address", self.node_ip]
        if self.client_port is not None:
            argv += ["--ray-client-server-port", str(self.client_port)]
        if self.num_gpus is not None:
            argv += ["--num-gpus", str(self.num_gpus)]
        return [*argv, *LOG_FLAGS, *self.extra_args]

    def stop_argv(self, ray: str) -> list[str]:
        return [ray, "stop", *LOG_FLAGS]


@dataclass(frozen=True)
class ClusterFile:
    """A cluster described by a cluster.yaml, brought up with `ray up` and down with `ray down`."""

    path: Path
    name: str
    expected_nodes: int = 1
    ssh_wait_s: float = DEFAULT_SSH_WAIT_S

    @property
    def description(self) -> str:
        return f"the cluster of {self.path}"

    def start_argv(self, ray: str) -> list[str]:
        return [ray, "up", "-y", "--no-config-cache", *LOG_FLAGS, str(self.path)]

    def stop_argv(self, ray: str) -> list[str]:
        return [ray, "down", "-y", *LOG_FLAGS, str(self.path)]


Target = LocalHead | ClusterFile


def choose_target(
    settings: Settings,
    env_dir: Path,
    *,
    cluster_config: str | None = None,
    local: bool = False,
    gpus: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> Target:
    """`--local` > `--cluster-config` > the .env's OPENRAG_TUI_CLUSTER_CONFIG > a local head.

    A cluster.yaml named in the .env is taken relative to the .env's folder.
    """
    configured = settings.cluster_config
    if local or not (cluster_config or configured):
        return local_head(settings, gpus)
    if gpus is not None:
        raise LifecycleError("Declared GPUs apply to a local head only, not to a cluster.yaml.")
    path = Path(cluster_config) if cluster_config else env_dir / Path(str(configured))
    source = "--cluster-config" if cluster_config else CLUSTER_CONFIG_KEY
    environ = os.environ if environ is None else environ
    wait_text = settings.raw.get(SSH_WAIT_KEY) or environ.get(SSH_WAIT_KEY)
    return read_cluster_file(path.expanduser(), source, _ssh_wait(wait_text))


def local_head(settings: Settings, gpus: int | None = None) -> LocalHead:
    """The head the .env describes; `gpus` (else OPENRAG_TUI_LOCAL_GPUS) declares GPUs."""
    bad = [p for p in settings.errors if p.variable in _LOCAL_KEYS]
    if bad:
        raise LifecycleError(f"Fix the .env first: {bad[0].text}")
    address = settings.ray_address or ""
    if gpus is not None and gpus < 0:
        raise LifecycleError(f"Declared GPUs must be a whole number of 0 or more (got {gpus}).")
    for variable, host in (
        ("RAY_HEAD_ADDRESS", _host_of(settings.ray_head_address)),
        ("HEAD_NODE_IP", settings.head_node_ip),
    ):
        if host and not is_this_machine(host):
            raise LifecycleError(
                f"The .env names the head {host} ({variable}), not this machine: a head started "
                "here would not be the cluster OpenRAG joins. Start Ray on that machine, or "
                f"set {CLUSTER_CONFIG_KEY} to a cluster.yaml."
            )
    return LocalHead(
        port=_port_of(settings.ray_head_address) or DEFAULT_GCS_PORT,
        dashboard_host=settings.dashboard_host,
        dashboard_port=settings.ray_dashboard_port,
        node_ip=settings.head_node_ip,
        client_port=_port_of(address) if address.startswith("ray://") else None,
        num_gpus=gpus if gpus is not None else settings.local_gpus,
        extra_args=tuple(shlex.split(settings.ray_start_args or "")),  # validated by Settings
    )


def read_cluster_file(
    path: Path, source: str, ssh_wait_s: float = DEFAULT_SSH_WAIT_S
) -> ClusterFile:
    """Read just enough of a cluster.yaml to know it is one; Ray validates the rest itself."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LifecycleError(f"The cluster config {path} (from {source}) does not exist.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LifecycleError(f"Cannot read the cluster config {path}: {error}.") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise LifecycleError(
            f"The cluster config {path} is not valid YAML{_where(error)}."
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("provider"), dict):
        raise LifecycleError(
            f"The cluster config {path} has no `provider` section: not a cluster.yaml."
        )
    provider = config["provider"]
    workers = provider.get("worker_ips") if provider.get("type") == "local" else None
    return ClusterFile(
        path=path.resolve(),
        name=str(config.get("cluster_name") or "default"),
        expected_nodes=1 + (len(workers) if isinstance(workers, list) else 0),
        ssh_wait_s=ssh_wait_s,
    )


def ray_environment(
    settings: Settings, env_path: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of every Ray command: ours, then the shared .env on top (it is the one
    source of truth, so actors see what the panel shows), and SHARED_ENV pointing at it."""
    env = dict(os.environ if base is None else base)
    env.update({key: value for key, value in settings.raw.items() if value is not None})
    if env_path.is_file():
        env.setdefault("SHARED_ENV", str(env_path.resolve()))
    env["PYTHONUNBUFFERED"] = "1"  # lines as they happen, not when a pipe buffer fills
    return env


def start_question(target: Target, dashboard_url: str) -> str:
    """What a start will do, in words, for the confirmation."""
    if isinstance(target, ClusterFile):
        nodes = f"{target.expected_nodes} node(s)"
        return (
            f"Run `ray up -y {target.path}`? It starts {target.name} ({nodes}) over SSH; the "
            f"panel then reads its dashboard at {dashboard_url}."
        )
    gpus = "GPUs as Ray detects them" if target.num_gpus is None else f"{target.num_gpus} GPUs"
    where = f" on {target.node_ip}" if target.node_ip else ""
    return (
        f"Start a local Ray head on this machine{where}? `ray start --head` on port "
        f"{target.port}, dashboard on {target.dashboard_host}:{target.dashboard_port}, {gpus}."
    )


def is_this_machine(host: str) -> bool:
    """Whether `host` resolves to an address of this machine (loopback included)."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    local = {
        address.address.split("%")[0]
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family in (socket.AF_INET, socket.AF_INET6)
    }
    for text in found:
        bare = str(text).split("%")[0]
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(bare).is_loopback or bare in local:
                return True
    return False


def _host_of(address: str | None) -> str | None:
    """The host of an already validated `host:port`."""
    if not address or ":" not in address:
        return None
    return address.rsplit(":", 1)[0].strip("[]")


def _port_of(address: str | None) -> int | None:
    """The port of an already validated `host:port` or `ray://host:port`."""
    if not address or ":" not in address.removeprefix("ray://"):
        return None
    return int(address.rsplit(":", 1)[1])


def _ssh_wait(text: str | None) -> float:
    if not text:
        return DEFAULT_SSH_WAIT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise LifecycleError(f"{SSH_WAIT_KEY} must be a number of seconds above 0 (got {text!r}).")
    return seconds


def _where(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{at}: {problem}" if problem else at
