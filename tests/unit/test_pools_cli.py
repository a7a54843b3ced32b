"""`scale` and `pools` on bad input: one line, exit 2, and the .env untouched (no cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.raycluster import free_port

ENV = b"# operators' notes\r\nRAY_POOL_SIZE=2 # two\r\nMARKER_POOL_SIZE=1\r\n"


def cli(*args: str, env_file: Path):
    return run_cli(*args, env_file=env_file, timeout=60)


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_bytes(ENV)
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("scale", "indexers", "2"), "invalid choice"),
        (("scale", "indexer", "-1"), "whole number of 0 or more"),
        (("scale", "marker", "2.5"), "whole number of 0 or more"),
        (("scale", "marker", "2", "--timeout", "0"), "greater than 0"),
    ],
)
def test_bad_scale_input_is_one_line_exit_2_and_changes_nothing(
    env_file: Path, args: tuple[str, ...], words: str
) -> None:
    result = cli(*args, env_file=env_file)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and words in result.stderr
    assert result.stdout == ""
    assert env_file.read_bytes() == ENV


def test_teardown_without_yes_and_without_a_terminal_refuses(env_file: Path) -> None:
    result = cli("pools", "teardown", env_file=env_file)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--yes" in result.stderr
    assert env_file.read_bytes() == ENV


def test_an_unreachable_cluster_is_exit_3_and_leaves_the_env_alone(env_file: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = cli("scale", "indexer", "3", "--address", address, env_file=env_file)
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "cannot reach Ray" in result.stderr
    assert env_file.read_bytes() == ENV


def test_help_lists_pools_and_scale(env_file: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openrag_tui", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "pools" in result.stdout and "scale" in result.stdout
