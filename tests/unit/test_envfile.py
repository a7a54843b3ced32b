"""The .env as a document: where it is found, how it reads, and edits that touch only one value."""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from openrag_tui.config import (
    EnvFile,
    EnvFileChanged,
    EnvFileError,
    locate_env,
    set_env_values,
)

DATA = Path(__file__).resolve().parent.parent / "data"
GUIDE = DATA / "guide.env"

# A new valid value for every key of the guide's .env.
GUIDE_NEW_VALUES = {
    "RAY_NUM_GPUS": "0.25",
    "RAY_POOL_SIZE": "4",
    "RAY_MAX_TASKS_PER_WORKER": "8",
    "MARKER_MAX_TASKS_PER_CHILD": "20",
    "MARKER_MAX_PROCESSES": "6",
    "MARKER_MIN_PROCESSES": "2",
    "MARKER_POOL_SIZE": "3",
    "MARKER_NUM_GPUS": "0.5",
    "SHARED_ENV": "/mnt/shared/.env",
    "RAY_DASHBOARD_PORT": "8266",
    "RAY_ADDRESS": "ray://10.0.0.1:10001",
    "HEAD_NODE_IP": "10.0.0.1",
    "RAY_HEAD_ADDRESS": "10.0.0.1:6379",
    "RAY_task_retry_delay_ms": "5000",
    "DATA_VOLUME": "/mnt/data",
    "MODEL_WEIGHTS_VOLUME": "/mnt/weights",
    "CONFIG_VOLUME": "/mnt/.hydra_config",
    "UV_LINK_MODE": "hardlink",
    "UV_CACHE_DIR": "/var/tmp/uv-cache",
}


def raw(text: str) -> dict[str, str | None]:
    """What python-dotenv reads, before interpolation."""
    return dotenv_values(stream=io.StringIO(text), interpolate=False)


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split only where python-dotenv sees a line break."""
    return re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z", text)


def doc(text: str) -> EnvFile:
    return EnvFile(Path("mem.env"), text)


@pytest.fixture
def guide_copy(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    shutil.copyfile(GUIDE, path)
    return path


# --- locating the file ------------------------------------------------------------------------


def test_cli_path_wins_even_when_missing(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=1\n")
    found = locate_env("other.env", {"SHARED_ENV": str(tmp_path / ".env")}, tmp_path)
    assert (found.path, found.source, found.exists) == (tmp_path / "other.env", "--env", False)


def test_shared_env_beats_local_file(tmp_path: Path) -> None:
    shared = tmp_path / "shared.env"
    shared.write_text("A=1\n")
    (tmp_path / ".env").write_text("A=2\n")
    found = locate_env(None, {"SHARED_ENV": str(shared)}, tmp_path)
    assert (found.path, found.source, found.exists) == (shared, "SHARED_ENV", True)


def test_shared_env_used_even_when_missing(tmp_path: Path) -> None:
    found = locate_env(None, {"SHARED_ENV": "/nowhere/.env"}, tmp_path)
    assert (found.path, found.source, found.exists) == (Path("/nowhere/.env"), "SHARED_ENV", False)


def test_local_env_when_nothing_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=1\n")
    found = locate_env(None, {"SHARED_ENV": ""}, tmp_path)
    assert (found.path, found.source, found.exists) == (tmp_path / ".env", "./.env", True)


def test_falls_back_to_ray_mount(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()  # a folder named .env is not a file
    found = locate_env(None, {}, tmp_path)
    assert (found.path, found.source) == (Path("/ray_mount/.env"), "/ray_mount/.env")
    assert found.exists == Path("/ray_mount/.env").is_file()


def test_relative_cli_path_is_taken_from_cwd(tmp_path: Path) -> None:
    assert locate_env("conf/x.env", {}, tmp_path).path == tmp_path / "conf" / "x.env"


# --- reading --------------------------------------------------------------------------------


def test_values_are_what_python_dotenv_reads() -> None:
    env = EnvFile.read(GUIDE)
    assert env.values["MARKER_MAX_PROCESSES"] == "5"
    assert env.values["UV_CACHE_DIR"] == "/tmp/uv-cache"
    assert env.values == dotenv_values(GUIDE)


def test_values_keep_python_dotenv_interpolation() -> None:
    assert doc("HEAD=10.0.0.1\nRAY_ADDRESS=ray://${HEAD}:10001\n").values["RAY_ADDRESS"] == (
        "ray://10.0.0.1:10001"
    )


def test_read_keeps_crlf(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\r\nB=2\r\n")
    env = EnvFile.read(path)
    assert env.text == "A=1\r\nB=2\r\n"
    assert env.values == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), (b"A=\xff\n", "not UTF-8"), ("folder", "is a folder")],
)
def test_unreadable_file_is_a_plain_error(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / ".env"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(EnvFileError, match=message):
        EnvFile.read(path)


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("A=1\nB=2\n", "B", 2),
        ("# c\n\n\n  B=2 # x\n", "B", 4),
        ("A=1\nA=2\n", "A", 2),  # the last binding wins
        ('A="x\ny"\nB=1\n', "B", 3),
        ("\ufeffA=1\r\nB=2\r\n", "B", 2),
        ("export A\n", "A", 1),
        ("A=1\n", "MISSING", None),
    ],
)
def test_line_of(text: str, key: str, line: int | None) -> None:
    assert doc(text).line_of(key) == line


def test_guide_lines() -> None:
    env = EnvFile.read(GUIDE)
    assert env.line_of("RAY_NUM_GPUS") == 3
    assert env.line_of("UV_CACHE_DIR") == 27


# --- editing: exact text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "updates", "expected"),
    [
        ("MARKER_POOL_SIZE=1 # Number of workers\n", {"MARKER_POOL_SIZE": "3"},
         "MARKER_POOL_SIZE=3 # Number of workers\n"),
        ("export A=1\n", {"A": "2"}, "export A=2\n"),
        ("A = 1  # c\n", {"A": "2"}, "A = 2  # c\n"),
        ("A='x y' # c\n", {"A": "new val"}, "A='new val' # c\n"),
        ('A="x"\n', {"A": "it's"}, 'A="it\'s"\n'),
        ("A='x'\n", {"A": "it's"}, 'A="it\'s"\n'),
        ("A=x\n", {"A": "a b"}, "A='a b'\n"),
        ("A=x # c\n", {"A": "#1"}, "A='#1' # c\n"),
        ("A=x\n", {"A": ""}, "A=''\n"),
        ("A=x\n", {"A": " lead"}, "A=' lead'\n"),
        ("A=x\n", {"A": "$HOME"}, "A='$HOME'\n"),
        ("A=x\n", {"A": 'it\'s "x"'}, 'A="it\'s \\"x\\""\n'),
        ("A=x\n", {"A": "C:\\dir"}, 'A="C:\\\\dir"\n'),
        ("A=x\n", {"A": "héllo✓"}, "A=héllo✓\n"),
        ("A=1\r\nB=2\r\n", {"B": "3", "C": "4"}, "A=1\r\nB=3\r\nC=4\r\n"),
        ("A=1", {"B": "2"}, "A=1\nB=2\n"),
        ("A=1\r\nB=2", {"C": "3"}, "A=1\r\nB=2\r\nC=3\r\n"),
        ("", {"A": "1"}, "A=1\n"),
        ("A=1\nA=2\n", {"A": "3"}, "A=1\nA=3\n"),
        ("A\n", {"A": "1"}, "A=1\n"),
        ("A # c\n", {"A": "1"}, "A=1 # c\n"),
        ("A#c\n", {"A": "1"}, "A='1'#c\n"),
        ("A= # c\n", {"A": "5"}, "A=5 # c\n"),
        ("A=   \n", {"A": "5"}, "A=5   \n"),
        ("A=\n", {"A": "5"}, "A=5\n"),
        ('A="x\ny"\nB=1\n', {"A": "z"}, 'A="z"\nB=1\n'),
        ("\ufeffA=1\n", {"A": "2"}, "\ufeffA=2\n"),
        ("A=1\nB=2\n", {"B": "9", "A": "8"}, "A=8\nB=9\n"),
    ],
)  # fmt: skip
def test_with_updates_exact_text(text: str, updates: dict[str, str], expected: str) -> None:
    new = doc(text).with_updates(updates)
    assert new == expected
    assert raw(new) == {**raw(text), **updates}


def test_with_updates_is_pure() -> None:
    env = doc("A=1\n")
    env.with_updates({"A": "2"})
    assert env.text == "A=1\n"


def test_edit_that_would_not_read_back_is_refused() -> None:
    # An unterminated quote earlier in the file would swallow the new quote.
    with pytest.raises(EnvFileError, match="safely"):
        doc('A="open\nB=1\n').with_updates({"B": 'x"y'})


def test_guide_edited_key_by_key(tmp_path: Path) -> None:
    guide_text = GUIDE.read_bytes().decode()
    assert set(GUIDE_NEW_VALUES) == set(raw(guide_text))
    old_lines = split_lines(guide_text)
    for key, value in GUIDE_NEW_VALUES.items():
        path = tmp_path / f"{key}.env"
        path.write_bytes(GUIDE.read_bytes())
        env = EnvFile.read(path)
        line = env.line_of(key)
        assert line is not None
        saved = set_env_values(env, {key: value})
        new_lines = split_lines(path.read_bytes().decode())
        assert saved.values[key] == value
        old_value = raw(guide_text)[key]
        expected = old_lines[line - 1].replace(f"={old_value}", f"={value}", 1)
        assert new_lines[line - 1] == expected  # inline comment and spacing kept
        assert new_lines[: line - 1] == old_lines[: line - 1]
        assert new_lines[line:] == old_lines[line:]


# --- editing: property-based round trip -------------------------------------------------------

KEYS = st.sampled_from(["A", "B_2", "_k", "export_x", "Long_Key_Name"])
NEW_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
ANY_TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=12
)
NEW_VALUES = ANY_TEXT | st.sampled_from(
    ["", " ", "a b", "#x", "a #b", "it's", 'say "hi"', "$HOME", "${A}", "back\\slash", " pad "]
)
PLAIN = st.text(
    st.characters(categories=("L", "N")) | st.sampled_from(list("-_./:@%+,=")),
    min_size=1,
    max_size=10,
)


@st.composite
def bindings(draw: st.DrawFn) -> str:
    key = draw(KEYS)
    prefix = draw(st.sampled_from(["", "export ", "  "]))
    style = draw(st.sampled_from(["plain", "single", "double", "empty", "bare"]))
    if style == "bare":
        return prefix + key
    if style == "plain":
        value = draw(PLAIN)
    elif style == "single":
        value = "'" + draw(ANY_TEXT).replace("'", "").replace("\\", "") + "'"
    elif style == "double":
        value = '"' + draw(ANY_TEXT).replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        value = ""
    comment = draw(st.sampled_from(["", " # note", "  # été ✓"]))
    return f"{prefix}{key}={value}{comment}"


LINES = st.one_of(
    bindings(),
    st.builds(lambda t: "#" + t, ANY_TEXT),
    st.sampled_from(["", "   ", "\t"]),
)


@st.composite
def env_texts(draw: st.DrawFn) -> str:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(draw(st.lists(LINES, max_size=12)))
    return text + eol if text and draw(st.booleans()) else text


@settings(max_examples=150, deadline=None)
@given(text=env_texts(), updates=st.dictionaries(KEYS | NEW_KEYS, NEW_VALUES, max_size=4))
def test_round_trip_touches_only_the_edited_values(text: str, updates: dict[str, str]) -> None:
    env = doc(text)
    new = env.with_updates(updates)
    assert raw(new) == {**raw(text), **updates}

    eol = "\r\n" if "\r\n" in text else "\n"
    appended = [k for k in updates if env.line_of(k) is None]
    edited = {env.line_of(k) for k in updates} - {None}
    grown = text + eol if appended and text and not text.endswith("\n") else text
    old_lines, new_lines = split_lines(grown), split_lines(new)
    assert len(new_lines) == len(old_lines) + len(appended)
    for number, old_line in enumerate(old_lines, start=1):
        if number not in edited:
            assert new_lines[number - 1] == old_line
    for key, line in zip(appended, new_lines[len(old_lines) :], strict=True):
        assert line.startswith(f"{key}=")
        assert line.endswith(eol)


# --- saving ---------------------------------------------------------------------------------


def test_save_appends_missing_key_and_keeps_backup(guide_copy: Path) -> None:
    old = guide_copy.read_bytes()
    saved = EnvFile.read(guide_copy).save({"VDB_HOST": "10.0.0.5"})
    assert guide_copy.read_bytes() == old + b"VDB_HOST=10.0.0.5\n"
    assert (guide_copy.parent / ".env.bak").read_bytes() == old
    assert saved.values["VDB_HOST"] == "10.0.0.5"
    assert not saved.changed_on_disk()


def test_save_keeps_mode(guide_copy: Path) -> None:
    guide_copy.chmod(0o640)
    EnvFile.read(guide_copy).save({"RAY_POOL_SIZE": "2"})
    assert stat.S_IMODE(guide_copy.stat().st_mode) == 0o640
    assert stat.S_IMODE((guide_copy.parent / ".env.bak").stat().st_mode) == 0o640


def test_save_creates_missing_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    EnvFile.empty(path).save({"RAY_POOL_SIZE": "2"})
    assert path.read_text() == "RAY_POOL_SIZE=2\n"
    assert not (tmp_path / ".env.bak").exists()


def test_save_through_symlink_keeps_the_link(guide_copy: Path) -> None:
    link = guide_copy.parent / "link.env"
    link.symlink_to(guide_copy)
    EnvFile.read(link).save({"RAY_POOL_SIZE": "2"})
    assert link.is_symlink()
    assert dotenv_values(guide_copy)["RAY_POOL_SIZE"] == "2"


def test_concurrent_change_is_refused(guide_copy: Path) -> None:
    env = EnvFile.read(guide_copy)
    guide_copy.write_text("RAY_POOL_SIZE=7\n")
    assert env.changed_on_disk()
    with pytest.raises(EnvFileChanged):
        set_env_values(env, {"RAY_POOL_SIZE": "2"})
    assert guide_copy.read_text() == "RAY_POOL_SIZE=7\n"


def test_file_created_behind_our_back_is_a_change(tmp_path: Path) -> None:
    env = EnvFile.empty(tmp_path / ".env")
    (tmp_path / ".env").write_text("A=1\n")
    with pytest.raises(EnvFileChanged):
        env.save({"A": "2"})


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_leaves_original_and_no_temp(
    guide_copy: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    old = guide_copy.read_bytes()
    before = sorted(p.name for p in guide_copy.parent.iterdir())
    env = EnvFile.read(guide_copy)

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, boom)
    with pytest.raises(EnvFileError, match="No space left"):
        env.save({"RAY_POOL_SIZE": "2"})
    monkeypatch.undo()
    assert guide_copy.read_bytes() == old
    assert sorted(p.name for p in guide_copy.parent.iterdir()) == before
