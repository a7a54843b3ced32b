"""The CLI as a script sees it: subcommands, exit codes, one-line errors, the env commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.raycluster import free_port

DATA = Path(__file__).resolve().parents[1] / "data"


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    return run_cli(*args, cwd=cwd, env=env, timeout=60)


@pytest.fixture
def guide_env(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    shutil.copyfile(DATA / "guide.env", path)
    return path


def test_help_lists_the_subcommands() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("status", "env"):
        assert command in result.stdout


def test_bad_arguments_are_one_line_and_exit_2() -> None:
    result = cli("status", "--watch", "soon")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "soon" in result.stderr


def test_env_check_reports_the_guides_placeholders_and_exits_1(guide_env: Path) -> None:
    result = cli("env", "check", "--env", str(guide_env))
    assert result.returncode == 1
    assert f"{guide_env} (from --env)" in result.stdout
    assert "RAY_ADDRESS (line 16)" in result.stdout
    assert "X.X.X.X" in result.stdout


def test_env_check_with_warnings_only_exits_0(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("RAY_POOL_SIZE=2\nDATA_VOLUME=/nowhere/data\n")
    result = cli("env", "check", "--env", str(env), "--json")
    assert result.returncode == 0, result.stderr
    problems = json.loads(result.stdout)
    assert [(p["variable"], p["severity"]) for p in problems] == [("DATA_VOLUME", "warning")]


def test_env_show_json_masks_secrets(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("EMBEDDER_API_KEY=sk-live-123\nRAY_POOL_SIZE=3\n")
    result = cli("env", "show", "--json", "--env", str(env))
    assert result.returncode == 0, result.stderr
    assert "sk-live-123" not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["values"]["RAY_POOL_SIZE"] == "3"
    assert shown["values"]["EMBEDDER_API_KEY"] != "sk-live-123"


def test_env_set_edits_one_line_and_keeps_the_rest(guide_env: Path) -> None:
    before = guide_env.read_bytes().splitlines(keepends=True)
    result = cli("env", "set", "MARKER_POOL_SIZE=2", "--env", str(guide_env))
    assert result.returncode == 0, result.stderr
    after = guide_env.read_bytes().splitlines(keepends=True)
    changed = [i for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
    assert [after[i] for i in changed] == [
        b"MARKER_POOL_SIZE=2 # Number of workers (typically 1 worker per cluster node)\n"
    ]


def test_env_set_refuses_an_invalid_value_and_changes_nothing(guide_env: Path) -> None:
    before = guide_env.read_bytes()
    result = cli("env", "set", "RAY_POOL_SIZE=-1", "--env", str(guide_env))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "RAY_POOL_SIZE" in result.stderr
    assert guide_env.read_bytes() == before


def test_env_set_without_equals_is_a_usage_error(guide_env: Path) -> None:
    result = cli("env", "set", "RAY_POOL_SIZE", "--env", str(guide_env))
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr


def test_env_location_falls_back_to_shared_env(tmp_path: Path, guide_env: Path) -> None:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHARED_ENV": str(guide_env)}
    result = cli("env", "check", cwd=tmp_path, env=environ)
    assert f"{guide_env} (from SHARED_ENV)" in result.stdout


def test_status_on_a_dead_dashboard_is_one_line_and_exit_3(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("RAY_POOL_SIZE=1\n")
    result = cli("status", "--env", str(env), "--dashboard", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "cannot reach the Ray dashboard" in result.stderr
