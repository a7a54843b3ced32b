"""The house rules that tools can check: import contracts, lint, and styles shipped in the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_import_contracts_hold() -> None:
    """Only the UI imports Textual; config imports nothing of ours; arrows point down."""
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", "openrag_tui", "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_styles_ship_inside_the_wheel(tmp_path: Path) -> None:
    """An installed (not editable) copy must find styles/app.tcss."""
    result = _run(
        sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
        "-q", "-w", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = tmp_path.glob("openrag_tui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "openrag_tui/styles/app.tcss" in names
    shutil.rmtree(ROOT / "build", ignore_errors=True)
