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
import socket
import stat
import time
from collections.abc import Callable, Iterable, Mapping
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
from dotenv.variables import parse_variables

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
MAX_BYTES = 1 << 20
"""A larger .env is refused: no real one is near it, and python-dotenv would take minutes."""
#: how long a writer waits for the lock, and when a lock nobody released counts as abandoned
LOCK_WAIT_SECONDS = 10.0
LOCK_STALE_SECONDS = 30.0
NEW_FILE_MODE = 0o600

_NEWLINE = re.compile(r"\r\n|\n|\r")
# Values safe to write bare: readable the same by python-dotenv, docker compose and a shell.
_PLAIN_VALUE = re.compile(r"[^\s'\"#$\\`]+")
_KEY_START = re.compile(r"\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)")


class EnvFileError(Exception):
    """The file could not be read, edited or saved; the message is meant for the operator."""


class EnvFileChanged(EnvFileError):
    """Someone else changed what we are about to change; saving would silently undo it.

    `theirs` holds the values the file has now for those keys (raw, as written)."""

    def __init__(self, message: str, theirs: Mapping[str, str | None] | None = None) -> None:
        super().__init__(message)
        self.theirs = dict(theirs or {})


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
        """Read the file as UTF-8 with its line endings untouched.

        Only a regular file of at most MAX_BYTES is read: a FIFO or a device (`--env /dev/zero`)
        would hang or never end, and python-dotenv's expansion of a huge file takes minutes."""
        data, st = _read_bounded(Path(path))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvFileError(f"{path} is not UTF-8 text (bad byte at {exc.start}).") from exc
        return cls(Path(path), text, _Fingerprint.of(st, data))

    @classmethod
    def empty(cls, path: Path) -> EnvFile:
        """A file that does not exist yet."""
        return cls(Path(path), "")

    @property
    def existed(self) -> bool:
        """Whether this snapshot was read from a file on disk."""
        return self._fingerprint is not None

    @cached_property
    def values(self) -> dict[str, str | None]:
        """python-dotenv's result, read the way OpenRAG reads the file (interpolated)."""
        return _interpolated(self._bindings)

    @cached_property
    def raw_values(self) -> dict[str, str | None]:
        """The values as written, `${NAME}` references left as they are: what screens show and
        edit, so that saving an unchanged value never writes an expanded secret back."""
        return {b.key: b.value for b in self._bindings if b.key is not None and not b.error}

    @cached_property
    def _bindings(self) -> list[Binding]:
        return _bindings(self.text)[0]

    @cached_property
    def unparsable(self) -> tuple[tuple[int, str | None], ...]:
        """(line, the key it seems to start) of every statement python-dotenv cannot parse."""
        found = []
        for binding in self._bindings:
            if binding.error:
                start = _KEY_START.match(binding.original.string)
                line = binding.original.line + _leading_newlines(binding.original.string)
                found.append((line, start["key"] if start else None))
        return tuple(found)

    @cached_property
    def bare_keys(self) -> tuple[str, ...]:
        """Keys written alone on their line, without `=`: python-dotenv reads them as unset."""
        return tuple(k for k, v in self.raw_values.items() if v is None)

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
            data, st = _read_bounded(self.path)
        except EnvFileError:
            return self._fingerprint is not None
        return _Fingerprint.of(st, data) != self._fingerprint

    def save(
        self,
        updates: Mapping[str, str],
        expected: Mapping[str, str | None] | None = None,
        check: Callable[[EnvFile, Mapping[str, str]], None] | None = None,
    ) -> EnvFile:
        """Apply `updates` to the file as it is now and write it atomically, keeping `.bak`.

        Writers take turns through a lock file beside the .env (see `_Lock`), so no update is
        lost; under it the file is read again and the updates applied on top. A key whose
        value differs from `expected` (default: the values this snapshot read for the updated
        keys) raises EnvFileChanged: someone changed what we are about to change. `check`
        (validation) runs on the fresh content before anything is written. After the rename the
        file is read back: if it does not hold the updates, the save failed."""
        if expected is None:
            expected = {key: self.raw_values.get(key) for key in updates}
        target = Path(os.path.realpath(self.path))  # keep a symlinked .env a symlink
        try:
            with _Lock(target):
                current = _current(self, target)
                _check_expected(current, expected)
                if check is not None:
                    check(current, updates)
                new_text = current.with_updates(updates)
                old = _stat_or_none(target)
                if current.existed:
                    backup = target.with_name(target.name + ".bak")
                    _atomic_write(backup, current.text.encode("utf-8"), old)
                _atomic_write(target, new_text.encode("utf-8"), old)
                saved = EnvFile.read(self.path)
        except OSError as exc:
            raise EnvFileError(f"Could not save {self.path}: {exc.strerror or exc}.") from exc
        wrong = sorted(k for k, v in updates.items() if saved.raw_values.get(k) != v)
        if wrong:
            raise EnvFileError(
                f"{self.path} does not hold {', '.join(wrong)} after saving: another program "
                "wrote it at the same moment; check the file and save again."
            )
        return saved


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
    """Temp file beside ``path``, fsync, rename over, fsync the folder.

    The temp file gets the original's mode and owner (0600 for a new file) before a byte is
    written: a save never exposes a secret that the file itself keeps private."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    mode = stat.S_IMODE(like.st_mode) if like is not None else NEW_FILE_MODE
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o600)
    try:
        if like is not None and os.geteuid() == 0:
            os.fchown(fd, like.st_uid, like.st_gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
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


def _read_bounded(path: Path) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file of at most MAX_BYTES, opened without blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise EnvFileError(f"{path} does not exist.") from exc
    except IsADirectoryError as exc:
        raise EnvFileError(f"{path} is a folder, not a file.") from exc
    except OSError as exc:
        raise EnvFileError(f"Could not read {path}: {exc.strerror}.") from exc
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise EnvFileError(f"{path} is a folder, not a file.")
        if not stat.S_ISREG(st.st_mode):
            raise EnvFileError(f"{path} is not a regular file (a pipe or a device?): refused.")
        if st.st_size > MAX_BYTES:
            raise EnvFileError(
                f"{path} is {st.st_size / 2**20:.1f} MiB: a .env over {MAX_BYTES >> 20} MiB "
                "is refused."
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise EnvFileError(f"Could not read {path}: {exc.strerror}.") from exc
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise EnvFileError(f"{path} grew past {MAX_BYTES >> 20} MiB while read: refused.")
    return data, st


def _interpolated(bindings: Iterable[Binding]) -> dict[str, str | None]:
    """python-dotenv's `${NAME}` expansion (its own parser, with override as OpenRAG uses it),
    in one pass: dotenv's own loop copies the environment once per key, quadratic in the file."""
    scope: dict[str, str | None] = dict(os.environ)
    values: dict[str, str | None] = {}
    for binding in bindings:
        if binding.key is None or binding.error:
            continue
        value = binding.value
        if value is not None:
            value = "".join(atom.resolve(scope) for atom in parse_variables(value))
        values[binding.key] = scope[binding.key] = value
    return values


def _leading_newlines(text: str) -> int:
    blank = text[: len(text) - len(text.lstrip())]
    return len(_NEWLINE.findall(blank))


def _current(snapshot: EnvFile, target: Path) -> EnvFile:
    """The file as it is now (under the lock); an absent file reads as empty."""
    if target.exists() or snapshot.existed:
        return EnvFile.read(snapshot.path)
    return EnvFile.empty(snapshot.path)


def _check_expected(current: EnvFile, expected: Mapping[str, str | None]) -> None:
    changed = [k for k, v in expected.items() if current.raw_values.get(k) != v]
    if changed:
        raise EnvFileChanged(
            f"{current.path} changed on disk since it was read ({', '.join(sorted(changed))}); "
            "reload it.",
            {k: current.raw_values.get(k) for k in changed},
        )


class _Lock:
    """`.<name>.lock` beside the .env, created with O_EXCL: that works on NFS and GlusterFS,
    where flock may not. It names its holder; one older than LOCK_STALE_SECONDS (a save takes
    milliseconds) or held by a dead process of this host was abandoned and is taken over."""

    def __init__(self, target: Path) -> None:
        self.path = target.with_name(f".{target.name}.lock")
        self._token = f"{socket.gethostname()} {os.getpid()} {secrets.token_hex(8)}\n"

    def __enter__(self) -> _Lock:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                if self._abandoned():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path)
                    continue
                if time.monotonic() > deadline:
                    raise EnvFileError(
                        f"{self.path} is held by another writer ({self._holder()}); "
                        "nothing was written: try again."
                    ) from None
                time.sleep(0.01 + secrets.randbelow(20) / 1000)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(self._token)
            return self

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(OSError):
            if self.path.read_text() == self._token:
                os.unlink(self.path)

    def _holder(self) -> str:
        try:
            host, pid, _ = self.path.read_text().split()
        except (OSError, ValueError):
            return "unknown"
        return f"pid {pid} on {host}"

    def _abandoned(self) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
            words = self.path.read_text().split()
        except OSError:
            return False  # gone already, or unreadable: wait for it as for a live holder
        if age > LOCK_STALE_SECONDS:
            return True
        if len(words) != 3 or not words[1].isdigit():
            return False  # being written right now
        return words[0] == socket.gethostname() and not _alive(int(words[1]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
