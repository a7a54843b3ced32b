"""`openrag-tui up` / `down` on bad input: one line, exit 2, and nothing is run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli


def cli(*args: str, cwd: Path):
    return run_cli(*args, cwd=cwd, timeout=60)


def test_help_lists_up_and_down(tmp_path: Path) -> None:
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "up" in result.stdout and "down" in result.stdout


def test_down_without_a_terminal_asks_for_yes_instead_of_stopping(tmp_path: Path) -> None:
    result = cli("down", "--local", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "openrag-tui: down asks for confirmation: pass --yes to stop without a terminal\n"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("up", "--gpus", "1.5"), "must be a whole number of 0 or more, got '1.5'"),
        (("up", "--gpus", "-1"), "must be a whole number of 0 or more, got '-1'"),
        (("up", "--local", "--cluster-config", "c.yaml"), "not allowed with argument"),
        (
            ("down", "--cluster-config", "missing.yaml", "--yes"),
            "missing.yaml (from --cluster-config)",
        ),
        (("up", "--cluster-config", "c.yaml", "--gpus", "2"), "apply to a local head only"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and words in result.stderr
    assert result.stdout == ""
