"""`openrag-tui up` / `down` for real: a local head, and `ray up`/`ray down` over SSH to 127.0.0.1.

`ray stop` ends every Ray process it can see, and the session's test cluster may be running in
this very process. So whatever may run `ray stop` runs inside its own PID namespace: the CLI for a
local head (entered with nsenter), the SSH server for `ray up` (Ray's remote commands run under
it). A decoy that `ray stop` would end if it could see it must survive every test.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from openrag_tui.cli import main
from openrag_tui.cluster import vectordb
from openrag_tui.cluster.dashboard import ENDPOINTS, DashboardClient
from openrag_tui.cluster.lifecycle import RAY_MISSING
from openrag_tui.cluster.processes import port_in_use, ray_processes
from tests.support.raycluster import free_port, wait_until

PYTHON = sys.executable
VENV_BIN = Path(sys.executable).parent
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
# PID 1 of a namespace must reap the orphans Ray's daemons become, or `ray stop` waits on zombies.
REAPER = """
import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.1)
"""
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@functools.cache
def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        return False
    probe = ["unshare", "--pid", "--fork", "--mount-proc", "true"]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


def _missing(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


needs_namespaces = pytest.mark.skipif(
    not _can_unshare(),
    reason="needs root with unshare and nsenter (util-linux) to keep `ray stop` in a PID namespace",
)
needs_sshd = pytest.mark.skipif(
    not _can_unshare()
    or not os.access(SSHD, os.X_OK)
    or bool(_missing("ssh", "ssh-keygen", "nc", "rsync")),
    reason="needs sshd, ssh, nc and rsync (Debian: openssh-server rsync netcat-openbsd; "
    ".ci/run installs them) and root for unshare",
)


# -- helpers ---------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


class PidNamespace:
    """A PID namespace started with `unshare`; ended by SIGKILL to its PID 1, which ends all in it
    (`unshare --fork` itself ignores SIGTERM)."""

    def __init__(self, *command: str) -> None:
        self._unshare = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL", *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.init_pid: int = wait_until(
            lambda: _children(self._unshare.pid)[0], 10, "the namespace's PID 1"
        )

    def run(self, argv: list[str], env: dict[str, str], timeout: float = 120):
        """Run a command inside the namespace (its processes and its /proc)."""
        entered = ["nsenter", "-t", str(self.init_pid), "-p", "-m", "--", *argv]
        return subprocess.run(entered, env=env, capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.init_pid, signal.SIGKILL)
        self._unshare.wait(timeout=30)


def openrag(*args: str, env: dict[str, str], namespace: PidNamespace | None = None):
    argv = [PYTHON, "-m", "openrag_tui", *args]
    if namespace is not None:
        return namespace.run(argv, env)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def one_line(text: str) -> str:
    assert text.count("\n") == 1, text
    return text.strip()


def client_at(port: int) -> DashboardClient:
    return DashboardClient(f"http://127.0.0.1:{port}")


def alive(client: DashboardClient) -> list[dict]:
    rows = client.get_json(ENDPOINTS["nodes_detail"])["data"]["result"]["result"]
    return [row for row in rows if row["state"] == "ALIVE"]


def processes_using(folder: Path) -> list[int]:
    """Processes on the whole machine whose command line mentions `folder` (a cluster's temp)."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(folder) in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process.info["pid"])
    return found


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder under /tmp: Ray's socket paths live inside and their length is limited."""
    folder = Path(tempfile.mkdtemp(prefix="ortui-lc-", dir="/tmp"))
    (folder / "tmp").mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def cli_env(short_tmp: Path) -> dict[str, str]:
    """The CLI's environment: its own TMPDIR/RAY_TMPDIR (`ray stop` deletes files there)."""
    tmp = str(short_tmp / "tmp")
    return {
        **os.environ, **RAY_ENV, "TMPDIR": tmp, "RAY_TMPDIR": tmp,
        "XDG_STATE_HOME": f"{tmp}/state",  # the embedded vector store's data stays in here
    }  # fmt: skip


@pytest.fixture
def decoy() -> Iterator[subprocess.Popen]:
    """A process `ray stop` would end if it saw it (its arguments name Ray's worker script)."""
    process = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(600)", "default_worker.py"])
    try:
        wait_until(
            lambda: process.pid in [p.pid for p in ray_processes()],
            10,
            "the decoy to look like Ray",
        )
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def namespace() -> Iterator[PidNamespace]:
    space = PidNamespace(PYTHON, "-c", REAPER)
    try:
        yield space
    finally:
        space.close()


# -- a local head ----------------------------------------------------------------------------


@needs_namespaces
def test_local_up_and_down_leave_everything_else_running(
    namespace: PidNamespace, short_tmp: Path, cli_env: dict[str, str], decoy: subprocess.Popen
) -> None:
    gcs, dashboard, client_port, agent, milvus = (free_port() for _ in range(5))
    env_file = short_tmp / ".env"
    env_file.write_text(
        f"HEAD_NODE_IP=127.0.0.1\nRAY_HEAD_ADDRESS=127.0.0.1:{gcs}\n"
        f"RAY_DASHBOARD_PORT={dashboard}\nRAY_ADDRESS=ray://127.0.0.1:{client_port}\n"
        f"OPENRAG_TUI_LOCAL_GPUS=2\nVDB_PORT={milvus}\n"
        f"OPENRAG_TUI_RAY_START_ARGS=--num-cpus 1 --dashboard-agent-listen-port {agent}\n"
    )
    client = client_at(dashboard)
    try:
        up = openrag("up", "--local", "--env", str(env_file), env=cli_env, namespace=namespace)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "Ray runtime started." in up.stdout and "\x1b" not in up.stdout
        assert f"The cluster is up: 1 node(s) alive at http://127.0.0.1:{dashboard}." in up.stdout
        assert f"Milvus Lite answers at 127.0.0.1:{milvus}." in up.stdout  # the vector store
        assert client.healthy() and vectordb.answers("127.0.0.1", milvus)
        (head,) = alive(client)
        assert head["resources_total"]["GPU"] == 2.0  # declared, for a machine without GPUs

        down = openrag("down", "--yes", "--env", str(env_file), env=cli_env, namespace=namespace)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "ray stop will end these" in down.stdout
        assert "raylet" in down.stdout and "gcs_server" in down.stdout
        assert "time.sleep(600)" not in down.stdout  # the decoy is out of its reach
        assert f"Stopped Milvus Lite (127.0.0.1:{milvus})." in down.stdout
        assert not client.healthy() and not vectordb.answers("127.0.0.1", milvus)
        assert processes_using(short_tmp) == []
        assert decoy.poll() is None
    finally:
        client.close()


@needs_namespaces
def test_local_up_with_a_port_taken_fails_at_once_in_one_line(
    namespace: PidNamespace, short_tmp: Path, cli_env: dict[str, str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env_file = short_tmp / ".env"
        env_file.write_text(
            f"RAY_HEAD_ADDRESS=127.0.0.1:{port}\nRAY_DASHBOARD_PORT={free_port()}\n"
        )
        began = time.monotonic()
        up = openrag("up", "--local", "--env", str(env_file), env=cli_env, namespace=namespace)
    assert up.returncode == 1, up.stdout + up.stderr
    assert one_line(up.stderr) == (
        f"openrag-tui: Port {port} (RAY_HEAD_ADDRESS) is already in use on this machine: "
        "stop what listens there or choose another port in the .env."
    )
    assert time.monotonic() - began < 15
    assert processes_using(short_tmp) == []


def test_a_missing_ray_command_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))  # no `ray` beside
    monkeypatch.setenv("PATH", str(tmp_path))  # and none on PATH
    env_file = tmp_path / ".env"
    env_file.write_text(f"RAY_DASHBOARD_PORT={free_port()}\n")
    assert main(["up", "--local", "--env", str(env_file)]) == 1
    assert one_line(capsys.readouterr().err) == f"openrag-tui: {RAY_MISSING}"


# -- a cluster.yaml --------------------------------------------------------------------------


def test_a_malformed_cluster_yaml_is_one_line_and_runs_nothing(
    short_tmp: Path, cli_env: dict[str, str]
) -> None:
    config = short_tmp / "cluster.yaml"
    config.write_text("cluster_name: rag\nprovider: {type: local, head_ip: 127.0.0.1\n")
    up = openrag(
        "up", "--cluster-config", str(config), "--env", str(short_tmp / ".env"), env=cli_env
    )
    assert up.returncode == 2, up.stdout + up.stderr
    assert one_line(up.stderr).startswith(
        f"openrag-tui: The cluster config {config} is not valid YAML at line 3, column 1: "
    )
    assert up.stdout == ""


def _control_dir(cluster_name: str) -> Path:
    """Where Ray keeps its shared SSH connection for a cluster (a fixed place under /tmp)."""
    user = hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10]
    return Path(f"/tmp/ray_ssh_{user}") / hashlib.sha256(cluster_name.encode()).hexdigest()[:10]


def _close_shared_ssh(cluster_name: str) -> None:
    folder = _control_dir(cluster_name)
    for control in folder.glob("*") if folder.is_dir() else ():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={control}", "-O", "exit", "x"],
            capture_output=True,
            timeout=10,
        )
    shutil.rmtree(folder, ignore_errors=True)


def cluster_yaml(name: str, key: Path, ssh_port: int, start_command: str) -> str:
    return json.dumps(  # JSON is YAML
        {
            "cluster_name": name,
            "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []},
            "auth": {
                "ssh_user": getpass.getuser(),
                "ssh_private_key": str(key),
                "ssh_proxy_command": f"nc 127.0.0.1 {ssh_port}",
            },
            "min_workers": 0,
            "max_workers": 0,
            "head_start_ray_commands": ["ray stop", start_command],
            "worker_start_ray_commands": [],
        }
    )


class SshServer:
    """sshd on 127.0.0.1 in its own PID namespace, with a home whose login shell finds `ray`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.key = folder / "user_key"
        self.home = folder / "home"
        self.head_tmp = folder / "headtmp"
        for path in (self.home, self.head_tmp):
            path.mkdir()
        for key in (folder / "host_key", self.key):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        shutil.copy(f"{self.key}.pub", folder / "authorized_keys")
        path_line = f'export PATH="{VENV_BIN}:$PATH"\n'
        for rc in (".bashrc", ".profile"):
            (self.home / rc).write_text(path_line)
        setenv = " ".join(
            f"{key}={value}"
            for key, value in {
                "HOME": self.home,
                "TMPDIR": self.head_tmp,
                "RAY_TMPDIR": self.head_tmp,
                **RAY_ENV,
            }.items()
        )
        config = folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
            f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile none\nUsePAM no\n"
            "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            f"KbdInteractiveAuthentication no\nSetEnv {setenv}\n"
        )
        os.makedirs("/run/sshd", exist_ok=True)
        self.namespace = PidNamespace(SSHD, "-D", "-e", "-f", str(config))
        wait_until(self._listening, 15, "sshd to listen")

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0


@pytest.fixture
def sshd(short_tmp: Path) -> Iterator[SshServer]:
    server = SshServer(short_tmp)
    try:
        yield server
    finally:
        server.namespace.close()


@needs_sshd
def test_ray_up_and_down_over_ssh(
    sshd: SshServer, short_tmp: Path, cli_env: dict[str, str], decoy: subprocess.Popen
) -> None:
    gcs, dashboard, client_port, agent = (free_port() for _ in range(4))
    name = f"ortui-{uuid.uuid4().hex[:8]}"
    start = (
        f"ray start --head --port {gcs} --dashboard-port {dashboard} --dashboard-host 127.0.0.1 "
        f"--ray-client-server-port {client_port} --dashboard-agent-listen-port {agent} "
        f"--num-cpus 1 --temp-dir {sshd.head_tmp}/ray --disable-usage-stats "
        "--autoscaling-config=~/ray_bootstrap_config.yaml"
    )
    (short_tmp / "cluster.yaml").write_text(cluster_yaml(name, sshd.key, sshd.port, start))
    env_file = short_tmp / ".env"  # the cluster.yaml named relative to the .env, as operators do
    env_file.write_text(
        f"OPENRAG_TUI_CLUSTER_CONFIG=cluster.yaml\nRAY_DASHBOARD_PORT={dashboard}\n"
    )
    client = client_at(dashboard)
    try:
        up = openrag("up", "--env", str(env_file), env=cli_env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "[7/7] Starting the Ray runtime" in up.stdout and "\x1b" not in up.stdout
        assert "The cluster is up: 1 node(s) alive" in up.stdout

        status = openrag("status", "--json", "--env", str(env_file), env=cli_env)
        assert status.returncode == 0, status.stderr
        (head,) = json.loads(status.stdout)["nodes"]
        assert head["is_head"] and head["state"] == "ALIVE"

        down = openrag("down", "--yes", "--env", str(env_file), env=cli_env)
        assert down.returncode == 0, down.stdout + down.stderr
        assert (
            f"The cluster is down: nothing answers at http://127.0.0.1:{dashboard}." in down.stdout
        )
        assert not client.healthy()
        assert processes_using(sshd.head_tmp) == []
        assert decoy.poll() is None
    finally:
        client.close()
        _close_shared_ssh(name)


@needs_sshd
def test_ray_up_with_ssh_unreachable_fails_within_the_ssh_wait(
    short_tmp: Path, cli_env: dict[str, str]
) -> None:
    name = f"ortui-{uuid.uuid4().hex[:8]}"
    config = short_tmp / "cluster.yaml"
    nobody = free_port()  # nothing listens there: every SSH attempt is refused
    key = short_tmp / "user_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config.write_text(cluster_yaml(name, key, nobody, "ray start --head"))
    env = {**cli_env, "AUTOSCALER_NODE_START_WAIT_S": "4"}
    began = time.monotonic()
    try:
        url = f"http://127.0.0.1:{free_port()}"
        up = openrag("up", "--cluster-config", str(config), "--dashboard", url, env=env)
    finally:
        _close_shared_ssh(name)
    assert up.returncode == 1, up.stdout + up.stderr
    assert one_line(up.stderr) == (
        "openrag-tui: ray up failed (exit 1): Failed to setup head node; "
        "SSH to the head did not answer within AUTOSCALER_NODE_START_WAIT_S."
    )
    assert "[1/7] Waiting for SSH to become available" in up.stdout
    assert time.monotonic() - began < 40


# -- the one-command first run ---------------------------------------------------------------


@needs_namespaces
def test_first_run_without_env_or_cluster_starts_a_demo_with_pools(
    namespace: PidNamespace, short_tmp: Path, cli_env: dict[str, str]
) -> None:
    if port_in_use(8265) or port_in_use(6379) or port_in_use(19530):
        pytest.skip("the demo's default ports (6379, 8265, 19530) are taken on this machine")
    home = short_tmp / "home"
    home.mkdir()
    env = {**cli_env, "HOME": str(home), "XDG_STATE_HOME": str(short_tmp / "state")}
    env.pop("SHARED_ENV", None)
    script = (
        "from openrag_tui import embedded\n"
        "from openrag_tui.workspace import open_workspace\n"
        "workspace = open_workspace()\n"
        "assert embedded.wanted(workspace, env_given=False, dashboard_given=False)\n"
        "print('DEMO', embedded.start(print).location.path)\n"
    )
    demo_env = short_tmp / "state" / "openrag-tui" / "demo" / ".env"
    client = client_at(8265)
    try:
        started = namespace.run(["env", "-C", str(home), PYTHON, "-c", script], env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"DEMO {demo_env}" in started.stdout
        status = openrag("status", "--json", "--env", str(demo_env), env=env, namespace=namespace)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert [node["gpus_total"] for node in report["nodes"]] == [4.0]
        pools = {pool["name"]: pool for pool in report["pools"]}
        assert (pools["indexer"]["alive"], pools["marker"]["alive"]) == (2, 1)
        assert report["vector_store"]["reachable"], report["vector_store"]  # Milvus Lite runs
    finally:
        down = openrag("down", "--yes", "--env", str(demo_env), env=env, namespace=namespace)
        client_gone = not client.healthy()
        client.close()
    assert down.returncode == 0, down.stdout + down.stderr
    assert client_gone and not vectordb.answers("127.0.0.1", 19530)
