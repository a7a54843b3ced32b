"""The shared ``.env`` as a document: find it, read it, change keys in place, save it safely.

Everything is parsed by python-dotenv itself, so the values here are exactly the values OpenRAG
sees; edits touch only the value of the binding python-dotenv lets win, so every other byte of
the operator's file (comments, order, quoting, line endings) survives.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dotenv import dotenv_values
from dotenv.parser import (
    Binding,
    Reader,
    _equal_sign,
    _export,
    _multiline_whitespace,
    _whitespace,
    parse_key,
    parse_stream,
    parse_value,
)

__all__ = [
    "DEFAULT_ENV_PATHS",
    "EnvFile",
    "EnvFileChanged",
    "EnvFileError",
    "EnvLocation",
    "locate_env",
]

DEFAULT_ENV_PATHS: tuple[str, ...] = ("./.env", "/ray_mount/.env")
"""Where the file is looked for when neither ``--env`` nor ``$SHARED_ENV`` names it, in order."""

_NEWLINE = re.compile(r"\r\n|\n|\r")
# Values safe to write bare: readable the same by python-dotenv, docker compose and a shell.
_PLAIN_VALUE = re.compile(r"[^\s'\"#$\\`]+")


class EnvFileError(Exception):
    """The file could not be read, edited or saved; the message is meant for the operator."""


class EnvFileChanged(EnvFileError):
    """Someone else wrote the file after we read it; saving would silently undo their change."""


@dataclass(frozen=True)
class EnvLocation:
    """Which file is used and why, so the CLI and UI can say so."""

    path: Path
    source: str
    exists: bool


def locate_env(
    cli_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> EnvLocation:
    """Pick the file: ``--env`` > ``$SHARED_ENV`` > ``./.env`` > ``/ray_mount/.env``.

    An explicit choice is honoured even when the file is missing (the operator may want to
    create it); otherwise the first existing default wins, falling back to ``/ray_mount/.env``.
    """
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    for source, given in (("--env", cli_path), ("SHARED_ENV", environ.get("SHARED_ENV"))):
        if given:
            path = cwd / Path(given).expanduser()
            return EnvLocation(path=path, source=source, exists=path.is_file())
    candidates = [EnvLocation(cwd / p, p, (cwd / p).is_file()) for p in DEFAULT_ENV_PATHS]
    return next((c for c in candidates if c.exists), candidates[-1])


@dataclass(frozen=True)
class _Fingerprint:
    """What the file looked like when read, to notice another writer."""

    mtime_ns: int
    size: int
    sha256: str

    @classmethod
    def of(cls, st: os.stat_result, data: bytes) -> _Fingerprint:
        return cls(st.st_mtime_ns, st.st_size, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class _Slot:
    """Where the value of one binding sits in the text (absolute character offsets)."""

    key: str
    value: str | None
    line: int
    start: int
    end: int
    quote: str  # "'", '"' or "" for a bare (or absent) value


@dataclass(frozen=True)
class EnvFile:
    """An immutable snapshot of the file as read; editing produces new text, never mutates.

    Built directly (``EnvFile(path, text)``) it is an in-memory document with no disk fingerprint.
    """

    path: Path
    text: str
    _fingerprint: _Fingerprint | None = field(default=None, repr=False, compare=False)

    @classmethod
    def read(cls, path: Path) -> EnvFile:
        """Read the file as UTF-8 with its line endings untouched."""
        try:
            with open(path, "rb") as handle:
                st = os.fstat(handle.fileno())
                data = handle.read()
        except FileNotFoundError as exc:
            raise EnvFileError(f"{path} does not exist.") from exc
        except IsADirectoryError as exc:
            raise EnvFileError(f"{path} is a folder, not a file.") from exc
        except OSError as exc:
            raise EnvFileError(f"Could not read {path}: {exc.strerror}.") from exc
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvFileError(f"{path} is not UTF-8 text (bad byte at {exc.start}).") from exc
        return cls(Path(path), text, _Fingerprint.of(st, data))

    @classmethod
    def empty(cls, path: Path) -> EnvFile:
        """A file that does not exist yet; saving creates it."""
        return cls(Path(path), "")

    @cached_property
    def values(self) -> dict[str, str | None]:
        """python-dotenv's result, read the way OpenRAG reads the file (universal newlines)."""
        return dotenv_values(stream=io.StringIO(self.text, newline=None))

    @cached_property
    def _slots(self) -> dict[str, _Slot]:
        return {slot.key: slot for slot in _scan(self.text)}

    def line_of(self, key: str) -> int | None:
        """1-based line of the binding that wins for ``key`` (python-dotenv: the last one)."""
        slot = self._slots.get(key)
        return slot.line if slot else None

    def with_updates(self, updates: Mapping[str, str]) -> str:
        """The text with ``updates`` applied: values replaced in place, new keys appended."""
        text = self.text
        present = [self._slots[k] for k in updates if k in self._slots]
        for slot in sorted(present, key=lambda s: s.start, reverse=True):
            spelling = _encode_in_place(text, slot, updates[slot.key])
            text = text[: slot.start] + spelling + text[slot.end :]
        text = _append(text, {k: v for k, v in updates.items() if k not in self._slots})
        _check_round_trip(self, text, updates)
        return text

    def changed_on_disk(self) -> bool:
        """Whether the file differs from what was read (missing at read counts too)."""
        try:
            with open(self.path, "rb") as handle:
                now = _Fingerprint.of(os.fstat(handle.fileno()), handle.read())
        except FileNotFoundError:
            return self._fingerprint is not None
        return now != self._fingerprint

    def save(self, updates: Mapping[str, str]) -> EnvFile:
        """Write the updated text atomically, keeping ``<name>.bak``; no validation here."""
        if self.changed_on_disk():
            raise EnvFileChanged(f"{self.path} changed on disk since it was read; reload it.")
        new_text = self.with_updates(updates)
        target = Path(os.path.realpath(self.path))  # keep a symlinked .env a symlink
        try:
            old = _stat_or_none(target)
            if self._fingerprint is not None:
                backup = target.with_name(target.name + ".bak")
                _atomic_write(backup, self.text.encode("utf-8"), old)
            _atomic_write(target, new_text.encode("utf-8"), old)
        except OSError as exc:
            raise EnvFileError(f"Could not save {self.path}: {exc.strerror or exc}.") from exc
        return EnvFile.read(self.path)


def _bindings(text: str) -> tuple[list[Binding], int]:
    """python-dotenv's bindings and the offset of the first (a leading BOM is skipped)."""
    bindings = list(parse_stream(io.StringIO(text)))
    return bindings, len(text) - sum(len(b.original.string) for b in bindings)


def _scan(text: str) -> Iterable[_Slot]:
    """Locate every binding's value, in file order."""
    bindings, offset = _bindings(text)
    for binding in bindings:
        if binding.key is not None and not binding.error:
            yield _locate(binding, offset)
        offset += len(binding.original.string)


def _locate(binding: Binding, offset: int) -> _Slot:
    """Replay python-dotenv's own steps on one binding to find where its value lies."""
    reader = Reader(io.StringIO(binding.original.string))
    reader.read_regex(_multiline_whitespace)
    line = binding.original.line + reader.position.line - 1
    reader.read_regex(_export)
    parse_key(reader)
    start = reader.position.chars
    reader.read_regex(_whitespace)
    if binding.value is None:  # `KEY` alone: the value goes right after the key
        return _Slot(binding.key or "", None, line, offset + start, offset + start, "")
    after_equals = reader.position.chars + 1
    reader.read_regex(_equal_sign)
    start = reader.position.chars
    quote = reader.peek(1) if reader.peek(1) in ("'", '"') else ""
    if quote:
        parse_value(reader)
        end = reader.position.chars
    elif binding.value == "":  # `KEY=` or `KEY= # note`: write right after `=`
        start = end = after_equals
    else:  # a bare value is the start of the rest of the line; its comment follows
        end = start + len(binding.value)
    return _Slot(binding.key or "", binding.value, line, offset + start, offset + end, quote)


def _single_quoted(value: str) -> str | None:
    """Single quotes, when they can hold the value with no escaping at all."""
    return None if "'" in value or "\\" in value else f"'{value}'"


def _double_quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _candidates(value: str, quote: str) -> list[str]:
    """Spellings of ``value`` in order of preference: the current style first."""
    plain = value if _PLAIN_VALUE.fullmatch(value) else None
    single = _single_quoted(value)
    double = _double_quoted(value)
    order = {"": [plain, single, double], "'": [single, double], '"': [double]}[quote]
    return [c for c in order if c is not None]


def _encode_in_place(text: str, slot: _Slot, value: str) -> str:
    """The new spelling of ``slot``'s value, checked with python-dotenv against its line."""
    line_start = max(text.rfind("\n", 0, slot.start), text.rfind("\r", 0, slot.start)) + 1
    line_end = _NEWLINE.search(text, slot.end)
    before = text[line_start : slot.start]
    after = text[slot.end : line_end.start() if line_end else len(text)]
    equals = "" if slot.value is not None else "="
    spelling = _spell(before + equals, after, slot.key, value, slot.quote)
    if spelling is None:
        raise EnvFileError(f"Could not write {slot.key} on line {slot.line} safely.")
    return equals + spelling


def _spell(before: str, after: str, key: str, value: str, quote: str) -> str | None:
    """The first candidate spelling that python-dotenv reads back as ``value`` on its line."""
    candidates = _candidates(value, quote)
    return next((c for c in candidates if _parses_to(before + c + after, key, value)), None)


def _parses_to(line: str, key: str, value: str) -> bool:
    bindings = [b for b in parse_stream(io.StringIO(line)) if b.key is not None or b.error]
    return [(b.key, b.value, b.error) for b in bindings] == [(key, value, False)]


def _append(text: str, new: Mapping[str, str]) -> str:
    """Add ``KEY=value`` lines at the end, in the file's own line-ending style."""
    if not new:
        return text
    found = _NEWLINE.search(text)
    eol = found.group() if found else "\n"
    if text and not text.endswith(("\n", "\r")):
        text += eol
    for key, value in new.items():
        spelling = _spell(f"{key}=", "", key, value, "")
        if spelling is None:
            raise EnvFileError(f"Could not add {key!r} safely.")
        text += f"{key}={spelling}{eol}"
    return text


def _check_round_trip(env: EnvFile, text: str, updates: Mapping[str, str]) -> None:
    """Refuse an edit python-dotenv would not read back exactly (e.g. next to a broken quote)."""
    before = dotenv_values(stream=io.StringIO(env.text), interpolate=False)
    after = dotenv_values(stream=io.StringIO(text), interpolate=False)
    expected = {**before, **updates}
    if after != expected:
        keys = expected.keys() | after.keys()
        wrong = sorted(
            k for k in keys if (k in after, after.get(k)) != (k in expected, expected.get(k))
        )
        raise EnvFileError(
            f"Could not edit {env.path} safely: {', '.join(wrong)} would read back differently."
        )


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _atomic_write(path: Path, data: bytes, like: os.stat_result | None) -> None:
    """Temp file beside ``path``, fsync, same mode/owner, rename over, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if like is not None:
            os.chmod(tmp, stat.S_IMODE(like.st_mode))
            if os.geteuid() == 0:
                os.chown(tmp, like.st_uid, like.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; some network filesystems refuse this, and the data is in place."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
