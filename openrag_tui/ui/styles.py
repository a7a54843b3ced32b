"""Find the shipped .tcss files: inside the package in a wheel, at the repo root when editable."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_STYLES = Path(__file__).resolve().parents[1] / "styles"
_SOURCE_STYLES = Path(__file__).resolve().parents[2] / "styles"


def styles_dir() -> Path:
    """The folder holding app.tcss (the wheel maps top-level styles/ to openrag_tui/styles/)."""
    if (_PACKAGE_STYLES / "app.tcss").is_file():
        return _PACKAGE_STYLES
    return _SOURCE_STYLES


def stylesheet(name: str = "app.tcss") -> Path:
    path = styles_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"openrag-tui is installed without its styles: {path} is missing")
    return path
