"""The house rules that tools can check: import contracts, lint, and styles shipped in the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PACKAGE = ROOT / "openrag_tui"


def _run(*command: str, cwd: Path = ROOT, env: dict[str, str] | None = None):
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def _top_level_modules() -> set[str]:
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    return names | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


def test_import_contracts_hold() -> None:
    """Only the UI imports Textual; config imports nothing of ours; arrows point down."""
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_sits_in_the_contracts() -> None:
    layers, textual, config = _contracts()
    layered = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    assert layers["exhaustive"] and layered == _top_level_modules()
    outside_ui = {f"openrag_tui.{name}" for name in _top_level_modules() - {"ui"}}
    assert set(textual["source_modules"]) == outside_ui
    assert set(config["forbidden_modules"]) == outside_ui - {"openrag_tui.config"} | {
        "openrag_tui.ui"
    }


@pytest.mark.parametrize(
    ("module", "imports"),
    [
        ("config/__init__.py", "import openrag_tui.cli"),  # config up to the CLI
        ("cluster/state.py", "import openrag_tui.pools.spec"),  # cluster up to pools
        ("formats.py", "import openrag_tui.workspace"),  # a layer skipped upwards
        ("indexing/chunking.py", "import textual"),  # Textual outside the UI
    ],
)
def test_a_wrong_arrow_breaks_the_contracts(tmp_path: Path, module: str, imports: str) -> None:
    """The contracts can fail: a copy of the package with one wrong import breaks them."""
    shutil.copytree(PACKAGE, tmp_path / "openrag_tui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "openrag_tui" / module
    target.write_text(target.read_text() + f"\n{imports}  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _run(str(BIN / "lint-imports"), "--no-cache", cwd=tmp_path, env=env)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout


def test_ruff_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", "openrag_tui", "tests", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_core_imports_without_textual() -> None:
    """As Harlequin proves it: the core in a fresh interpreter never loads Textual."""
    code = (
        "import sys, openrag_tui.cli, openrag_tui.cluster.refresh, openrag_tui.indexing.plan, "
        "openrag_tui.render, openrag_tui.workspace; assert 'textual' not in sys.modules"
    )
    result = _run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr


def test_worker_classes_are_the_pools_facts() -> None:
    """The cluster view tells our pools by these class names: they are declared once."""
    from openrag_tui.config.pools import FACTS
    from openrag_tui.pools.workers import WORKER_CLASSES

    assert {pool: cls.__name__ for pool, cls in WORKER_CLASSES.items()} == {
        pool: facts.worker_class for pool, facts in FACTS.items()
    }


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
