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
        """Relative paths in the .env are taken from the .env's folder, as OpenRAG does. The
        ledger and the outputs must resolve inside the volume (every node shares it, and a
        symbolic link planted in our own folder must not send writes elsewhere)."""
        volume = Path(os.path.realpath(env_dir / Path(settings.data_volume).expanduser()))
        ledger = (
            env_dir / Path(settings.ledger).expanduser()
            if settings.ledger
            else volume / STATE_FOLDER / "ledger.sqlite"
        )
        where = cls(volume, Path(os.path.abspath(ledger)), volume / STATE_FOLDER / "partitions")
        where.check_inside(where.ledger, "the ledger (OPENRAG_TUI_LEDGER)")
        where.check_inside(where.outputs, "the outputs folder")
        return where

    def check_inside(self, path: Path, what: str) -> Path:
        """`path` resolved (links followed as far as they exist), refused outside the volume."""
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.volume):
            raise BadPath(
                f"{what} {path} resolves to {real}, outside DATA_VOLUME ({self.volume}): refused"
            )
        return real

    def inside(self, path: str | Path) -> Path:
        """The real path if it is inside the volume, else BadPath."""
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.volume):
            raise BadPath(f"{path} is outside DATA_VOLUME ({self.volume}): refused")
        return real

    def relative(self, path: str | Path) -> str:
        return self.inside(path).relative_to(self.volume).as_posix()


@dataclass(frozen=True)
class Found:
    """The files named by a batch's arguments, and where each relative argument was found."""

    files: tuple[str, ...]
    notes: tuple[str, ...] = ()


def expand(arguments: list[str], where: Where, cwd: Path) -> Found:
    """Files named by the arguments (a file, a folder taken recursively, or a glob), as real
    paths inside the volume, in a stable order without repeats. A relative argument is looked
    for in the working folder, then in the volume (the notes say which). Hidden files and
    folders (our own `.openrag-tui` among them) are left out of folders and globs: wildcards
    never match them, as in a shell."""
    if not where.volume.is_dir():
        raise BadPath(f"DATA_VOLUME {where.volume} is not a folder")
    found: dict[str, None] = {}
    notes: list[str] = []
    for argument in arguments:
        given = Path(argument).expanduser()
        bases = [None] if given.is_absolute() else [cwd, where.volume]
        for base in dict.fromkeys(bases):  # the volume may be the working folder
            candidates = _named(given if base is None else base / given, argument, where)
            if candidates is not None:
                break
        else:
            if _GLOB_CHARS & set(argument):
                raise BadPath(f"{argument} matches no file (in {_places(bases, where)})")
            raise BadPath(f"{argument}: no such file or folder (in {_places(bases, where)})")
        if base is not None and cwd != where.volume:
            place = "the working folder" if base == cwd else "DATA_VOLUME"
            notes.append(f"{argument}: taken from {place} ({base})")
        for candidate in candidates:
            real = where.inside(candidate)
            if not real.is_file():
                raise BadPath(f"{candidate} is not a regular file")
            found[str(real)] = None
    if not found:
        raise BadPath("nothing to index: the folders hold no files")
    return Found(tuple(found), tuple(notes))


def _named(path: Path, argument: str, where: Where) -> list[Path] | None:
    """What one argument names from one base; None when nothing is there."""
    if path.is_dir():
        where.inside(path)  # refused before walking, say, the whole file system
        return sorted(_walk(path))
    if path.exists() or path.is_symlink():
        return [path]
    if _GLOB_CHARS & set(argument):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in matches if p.is_file() or p.is_symlink()]
        return files or None
    return None


def _places(bases: list[Path | None], where: Where) -> str:
    if bases == [None]:
        return "the file system"
    return " or ".join(
        "DATA_VOLUME" if base == where.volume else "the working folder"
        for base in dict.fromkeys(bases)
    )


def _walk(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(root) / n for n in names if not n.startswith(".")]
    return files


def relatives(arguments: list[str], where: Where, cwd: Path | None = None) -> tuple[str, ...]:
    """The documents the arguments name, as paths inside the volume (their ids): existing
    files, folders and globs as `expand` finds them; a file that is gone by its path alone
    (one may forget a deleted document)."""
    cwd = cwd or Path.cwd()
    found: dict[str, None] = {}
    for argument in arguments:
        given = Path(argument).expanduser()
        candidates = [given] if given.is_absolute() else [cwd / given, where.volume / given]
        if any(c.exists() for c in candidates) or _GLOB_CHARS & set(argument):
            for path in expand([argument], where, cwd).files:
                found[where.relative(path)] = None
            continue
        for candidate in candidates:
            absolute = Path(os.path.abspath(candidate))
            parent = Path(os.path.realpath(absolute.parent))
            if parent.is_relative_to(where.volume):
                found[(parent / absolute.name).relative_to(where.volume).as_posix()] = None
                break
        else:
            raise BadPath(f"{argument} is outside DATA_VOLUME ({where.volume}): refused")
    return tuple(found)
