"""What an operator tripped on in the CLI: broken lines that passed, typos that were appended,
quotes the shell left, read-only that still wrote, exit codes that said the wrong thing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli


@pytest.fixture
def env(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text("# ops\nRAY_POOL_SIZE=2\n")
    return path


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("this line has no equals sign", "line 3 cannot be parsed by python-dotenv"),
        ("RAY_POOL_SIZE='4", "line 3 cannot be parsed by python-dotenv"),
    ],
)
def test_a_line_python_dotenv_cannot_parse_is_an_error_named_once(
    env: Path, line: str, words: str
) -> None:
    env.write_text(env.read_text() + line + "\n")
    checked = run_cli("env", "check", env_file=env)
    assert checked.returncode == 1
    assert checked.stdout.count(words) == 1 and "could not parse" not in checked.stderr
    shown = run_cli("env", "show", env_file=env)
    assert "could not parse" not in shown.stdout + shown.stderr


def test_a_typo_of_a_known_key_is_refused_with_did_you_mean(env: Path) -> None:
    before = env.read_bytes()
    result = run_cli("env", "set", "RAY_POOL_SIZ=4", env_file=env)
    assert result.returncode == 2 and "did you mean RAY_POOL_SIZE?" in result.stderr
    assert env.read_bytes() == before


def test_a_new_key_needs_add(env: Path) -> None:
    refused = run_cli("env", "set", "MY_OWN_KEY=1", env_file=env)
    assert refused.returncode == 2 and "--add" in refused.stderr
    added = run_cli("env", "set", "MY_OWN_KEY=1", "--add", env_file=env)
    assert added.returncode == 0 and env.read_text().endswith("MY_OWN_KEY=1\n")
    known = run_cli("env", "set", "MARKER_POOL_SIZE=2", env_file=env)  # known: no --add needed
    assert known.returncode == 0, known.stderr


def test_spaces_the_shell_kept_are_not_written(env: Path) -> None:
    result = run_cli("env", "set", "RAY_POOL_SIZE= 3 ", env_file=env)
    assert result.returncode == 0 and "\nRAY_POOL_SIZE=3\n" in env.read_text()


@pytest.mark.parametrize(
    "args",
    [
        ("env", "set", "RAY_POOL_SIZE=3"),
        ("scale", "indexer", "3"),
        ("pools", "deploy"),
        ("pools", "teardown", "--yes"),
        ("index", "data", "--partition", "p"),
        ("batches", "cancel", "x"),
        ("batches", "retry", "x"),
        ("up",),
        ("down", "--yes"),
    ],
)
def test_read_only_refuses_every_changing_command(env: Path, args: tuple[str, ...]) -> None:
    before = env.read_bytes()
    result = run_cli("--read-only", *args, env_file=env)
    assert result.returncode == 2, result.stderr
    assert "--read-only" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert env.read_bytes() == before


def test_read_only_still_reads(env: Path) -> None:
    assert run_cli("--read-only", "env", "show", env_file=env).returncode == 0
    assert run_cli("--read-only", "batches", env_file=env).returncode == 0


def test_an_unknown_batch_is_a_failure_not_bad_input(env: Path) -> None:
    result = run_cli("batches", "show", "nosuch", env_file=env)
    assert result.returncode == 1 and "no batch 'nosuch'" in result.stderr
