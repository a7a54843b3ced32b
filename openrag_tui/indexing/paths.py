"""Where indexing reads and writes, and which paths a batch may take.

Everything lives on the shared data volume so that every node sees it: the sources, the ledger
(`.openrag-tui/ledger.sqlite` unless `OPENRAG_TUI_LEDGER` says otherwise) and the outputs
(`.openrag-tui/partitions/<partition>/`). A source must resolve inside the volume, symlinks
included, so a batch cannot read (or leak into the outputs) files the cluster does not share.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from openrag_tui.config import Settings

STATE_FOLDER = ".openrag-tui"
_GLOB_CHARS = frozenset("*?[")


class BadPath(ValueError):
    """A path a batch may not take; the message names it and says why."""


@dataclass(frozen=True)
class Where:
    """The resolved folders of one .env, the same on every node (the volume is shared)."""

    volume: Path
    ledger: Path
    outputs: Path

    @classmethod
    def of(cls, settings: Settings, env_dir: Path) -> Where:
        """Relative paths in the .env are taken from the .env's folder, as OpenRAG does."""
        volume = Path(os.path.realpath(env_dir / Path(settings.data_volume).expanduser()))
        ledger = (
            env_dir / Path(settings.ledger).expanduser()
            if settings.ledger
            else volume / STATE_FOLDER / "ledger.sqlite"
        )
        return cls(volume, Path(os.path.abspath(ledger)), volume / STATE_FOLDER / "partitions")

    def inside(self, path: str | Path) -> Path:
        """The real path if it is inside the volume, else BadPath."""
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.volume):
            raise BadPath(f"{path} is outside DATA_VOLUME ({self.volume}): refused")
        return real

    def relative(self, path: str | Path) -> str:
        return self.inside(path).relative_to(self.volume).as_posix()


def expand(arguments: list[str], where: Where, cwd: Path) -> list[str]:
    """Files named by the arguments (a file, a folder taken recursively, or a glob), as real
    paths inside the volume, in a stable order without repeats. Hidden files and folders
    (our own `.openrag-tui` among them) are left out of folders and globs."""
    if not where.volume.is_dir():
        raise BadPath(f"DATA_VOLUME {where.volume} is not a folder")
    found: dict[str, None] = {}
    for argument in arguments:
        path = cwd / Path(argument).expanduser()
        if path.is_dir():
            where.inside(path)
            candidates = sorted(_walk(path))
        elif path.exists() or path.is_symlink():
            candidates = [path]
        elif _GLOB_CHARS & set(argument):
            candidates = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            candidates = [p for p in candidates if p.is_file() and not _hidden(p, cwd)]
            if not candidates:
                raise BadPath(f"{argument} matches no file")
        else:
            raise BadPath(f"{argument}: no such file or folder")
        for candidate in candidates:
            real = where.inside(candidate)
            if not real.is_file():
                raise BadPath(f"{candidate} is not a regular file")
            found[str(real)] = None
    if not found:
        raise BadPath("nothing to index: the folders hold no files")
    return list(found)


def _walk(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(root) / n for n in names if not n.startswith(".")]
    return files


def _hidden(path: Path, base: Path) -> bool:
    try:
        parts = path.relative_to(base).parts
    except ValueError:
        parts = path.parts
    return any(part.startswith(".") for part in parts)
