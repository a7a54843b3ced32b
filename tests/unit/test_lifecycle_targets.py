"""Which cluster `up`/`down` act on and the exact Ray commands, decided from the .env alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from openrag_tui.cluster.processes import find_ray
from openrag_tui.cluster.targets import (
    ClusterFile,
    LifecycleError,
    LocalHead,
    choose_target,
    ray_environment,
)
from openrag_tui.config import Settings

LOG = ["--log-style", "record", "--log-color", "false"]


def settings(**values: str) -> Settings:
    return Settings.from_values(values)


def test_a_local_head_comes_from_the_guides_ray_variables(tmp_path: Path) -> None:
    env = settings(
        HEAD_NODE_IP="127.0.0.1",
        RAY_HEAD_ADDRESS="127.0.0.1:6380",
        RAY_DASHBOARD_PORT="8266",
        RAY_ADDRESS="ray://10.0.0.1:10002",
    )
    head = choose_target(env, tmp_path)
    assert head.start_argv("ray") == [
        "ray", "start", "--head", "--port", "6380",
        "--dashboard-host", "127.0.0.1", "--dashboard-port", "8266",
        "--node-ip-address", "127.0.0.1", "--ray-client-server-port", "10002", *LOG,
    ]  # fmt: skip
    assert head.stop_argv("ray") == ["ray", "stop", *LOG]
    assert head.ports() == {
        6380: "RAY_HEAD_ADDRESS",
        8266: "RAY_DASHBOARD_PORT",
        10002: "RAY_ADDRESS",
    }


@pytest.mark.parametrize(
    ("variable", "value"),
    [("RAY_HEAD_ADDRESS", "192.0.2.7:6379"), ("HEAD_NODE_IP", "192.0.2.7")],
)
def test_a_local_start_is_refused_when_the_env_names_another_machine(
    tmp_path: Path, variable: str, value: str
) -> None:
    """A head started here on that cluster's port would not be the cluster OpenRAG joins."""
    with pytest.raises(LifecycleError, match=f"names the head 192.0.2.7 \\({variable}\\)"):
        choose_target(settings(**{variable: value}), tmp_path, local=True)


def test_an_empty_env_starts_rays_defaults_with_the_dashboard_on_loopback(tmp_path: Path) -> None:
    head = choose_target(settings(), tmp_path)
    assert head == LocalHead(port=6379, dashboard_host="127.0.0.1", dashboard_port=8265)
    assert head.start_argv("/venv/bin/ray")[:3] == ["/venv/bin/ray", "start", "--head"]


def test_panel_settings_declare_gpus_bind_the_dashboard_and_add_arguments(tmp_path: Path) -> None:
    env = settings(
        OPENRAG_TUI_LOCAL_GPUS="4",
        OPENRAG_TUI_DASHBOARD_HOST="0.0.0.0",
        OPENRAG_TUI_RAY_START_ARGS="--num-cpus 2 --resources '{\"disk\": 1}'",
        RAY_ADDRESS="auto",  # not a Ray Client address: no client port
    )
    argv = choose_target(env, tmp_path).start_argv("ray")
    assert argv[-4:] == ["--num-cpus", "2", "--resources", '{"disk": 1}']
    assert argv[argv.index("--num-gpus") + 1] == "4"
    assert argv[argv.index("--dashboard-host") + 1] == "0.0.0.0"
    assert "--ray-client-server-port" not in argv
    flag = choose_target(env, tmp_path, gpus=0)
    assert flag.start_argv("ray")[flag.start_argv("ray").index("--num-gpus") + 1] == "0"


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"OPENRAG_TUI_LOCAL_GPUS": "1.5"}, "OPENRAG_TUI_LOCAL_GPUS must be a whole number"),
        ({"OPENRAG_TUI_RAY_START_ARGS": "--x 'open"}, "OPENRAG_TUI_RAY_START_ARGS cannot be split"),
        ({"RAY_HEAD_ADDRESS": "X.X.X.X:6379"}, "Fix the .env first: RAY_HEAD_ADDRESS"),
    ],
)
def test_bad_values_for_a_local_head_are_one_sentence(tmp_path: Path, values, words) -> None:
    with pytest.raises(LifecycleError, match=words):
        choose_target(settings(**values), tmp_path)


def test_errors_elsewhere_in_the_env_do_not_block_a_local_head(tmp_path: Path) -> None:
    assert isinstance(choose_target(settings(RAY_POOL_SIZE="many"), tmp_path), LocalHead)


def test_a_cluster_yaml_from_the_env_is_read_beside_it(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(
        "cluster_name: rag\nprovider: {type: local, head_ip: 10.0.0.1, worker_ips: [10.0.0.2]}\n"
    )
    env = settings(OPENRAG_TUI_CLUSTER_CONFIG="cluster.yaml", AUTOSCALER_NODE_START_WAIT_S="30")
    config = choose_target(env, tmp_path, environ={})
    path = (tmp_path / "cluster.yaml").resolve()
    assert config == ClusterFile(path=path, name="rag", expected_nodes=2, ssh_wait_s=30.0)
    assert config.start_argv("ray") == ["ray", "up", "-y", "--no-config-cache", *LOG, str(path)]
    assert config.stop_argv("ray") == ["ray", "down", "-y", *LOG, str(path)]
    assert isinstance(choose_target(env, tmp_path, local=True), LocalHead)  # --local wins


def test_the_ssh_wait_defaults_to_two_minutes_and_may_come_from_the_environment(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("provider: {type: aws}\n")
    assert (
        choose_target(settings(), tmp_path, cluster_config=str(path), environ={}).ssh_wait_s == 120
    )
    from_env = {"AUTOSCALER_NODE_START_WAIT_S": "9"}
    target = choose_target(settings(), tmp_path, cluster_config=str(path), environ=from_env)
    assert (target.ssh_wait_s, target.expected_nodes) == (9.0, 1)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, r"\(from --cluster-config\) does not exist"),
        ("provider: {type: local, head_ip: 1.2.3.4\n", "is not valid YAML at line 2, column 1"),
        ("- just\n- a list\n", "has no `provider` section"),
    ],
)
def test_a_bad_cluster_yaml_is_one_sentence_naming_the_file(tmp_path: Path, text, words) -> None:
    path = tmp_path / "cluster.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(LifecycleError, match=words) as raised:
        choose_target(settings(), tmp_path, cluster_config=str(path))
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_declared_gpus_do_not_apply_to_a_cluster_yaml(tmp_path: Path) -> None:
    with pytest.raises(LifecycleError, match="local head only"):
        choose_target(settings(), tmp_path, cluster_config="c.yaml", gpus=2)


def test_ray_processes_get_the_shared_env_on_top_of_ours(tmp_path: Path) -> None:
    env_path = tmp_path / ".env"
    env_path.write_text("RAY_POOL_SIZE=3\n")
    env = ray_environment(
        settings(RAY_POOL_SIZE="3", EMPTY=None), env_path, {"RAY_POOL_SIZE": "1", "HOME": "/h"}
    )
    assert env["RAY_POOL_SIZE"] == "3" and env["HOME"] == "/h" and "EMPTY" not in env
    assert env["SHARED_ENV"] == str(env_path.resolve())
    assert env["PYTHONUNBUFFERED"] == "1"
    assert ray_environment(settings(SHARED_ENV="/ray_mount/.env"), env_path, {})["SHARED_ENV"] == (
        "/ray_mount/.env"
    )
    assert "SHARED_ENV" not in ray_environment(settings(), tmp_path / "missing.env", {})


def test_ray_is_found_beside_the_interpreter_before_path(tmp_path: Path) -> None:
    venv, elsewhere = tmp_path / "venv" / "bin", tmp_path / "elsewhere"
    for folder in (venv, elsewhere):
        folder.mkdir(parents=True)
        (folder / "ray").write_text("#!/bin/sh\n")
        (folder / "ray").chmod(0o755)
    python = str(venv / "python")
    assert find_ray(python, path=str(elsewhere)) == str(venv / "ray")
    assert find_ray(str(tmp_path / "python"), path=str(elsewhere)) == str(elsewhere / "ray")
    assert find_ray(str(tmp_path / "python"), path=str(tmp_path)) is None
