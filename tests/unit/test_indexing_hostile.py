"""Indexing against hostile files and names, without a cluster: each refusal is the file's own
fault in one sentence, no read is unbounded, no write leaves the volume, no name can style or
escape the terminal."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from openrag_tui.cli import main
from openrag_tui.config import Settings
from openrag_tui.indexing.batch import FileState, config_of
from openrag_tui.indexing.chunking import Chunk
from openrag_tui.indexing.errors import DocumentError
from openrag_tui.indexing.ledger import Ledger
from openrag_tui.indexing.loaders import load
from openrag_tui.indexing.sinks import Indexed
from openrag_tui.indexing.sinks.files import NAME_MAX, FilesSink, output_name
from openrag_tui.indexing.sources import MIB, read_source, source_digest


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / "docs").mkdir(parents=True)
    return folder.resolve()


def test_a_fifo_in_place_of_a_file_fails_at_once(volume: Path) -> None:
    path = volume / "docs" / "a.txt"
    os.mkfifo(path)
    with pytest.raises(DocumentError, match="not a regular file"):
        source_digest(str(path), volume, MIB)
    with pytest.raises(DocumentError, match="not a regular file"):
        load(str(path))


@pytest.mark.parametrize("target", ["/dev/zero", "outside"])
def test_a_symlink_swapped_in_is_refused_before_a_byte_is_read(
    volume: Path, tmp_path: Path, target: str
) -> None:
    path = volume / "docs" / "a.txt"
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    path.symlink_to("/dev/zero" if target == "/dev/zero" else outside)
    with pytest.raises(DocumentError, match="no longer resolves inside DATA_VOLUME"):
        source_digest(str(path), volume, MIB)
    with pytest.raises(DocumentError, match="replaced by a symbolic link"):
        read_source(str(path))


def test_a_link_above_the_file_is_refused(volume: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.txt").write_text("x")
    os.rename(volume / "docs", tmp_path / "old-docs")
    (volume / "docs").symlink_to(elsewhere)
    with pytest.raises(DocumentError, match="no longer resolves inside DATA_VOLUME"):
        source_digest(str(volume / "docs" / "a.txt"), volume, MIB)


def test_a_huge_sparse_file_fails_at_once_as_too_large(volume: Path) -> None:
    path = volume / "docs" / "big.txt"
    with open(path, "wb") as handle:
        handle.truncate(1 << 30)  # 1 GiB, nothing on disk
    for read in (lambda: source_digest(str(path), volume, 200 * MIB), lambda: load(str(path))):
        with pytest.raises(DocumentError) as refused:
            read()
        assert str(refused.value) == "too large (1,024 MB > 200 MB)"


def test_the_limit_is_a_setting() -> None:
    assert config_of(Settings()).max_file_mb == 200
    settings = Settings.from_values({"OPENRAG_TUI_MAX_FILE_MB": "5"})
    assert config_of(settings).max_file_bytes == 5 * MIB


def _document(relative: str) -> Indexed:
    return Indexed("/v/x", relative, "p", "h" * 64, "# x", (Chunk(0, "x", (1,)),), {})


def test_a_link_in_the_outputs_tree_is_refused(tmp_path: Path) -> None:
    volume = tmp_path / "data"
    outputs = volume / ".openrag-tui" / "partitions"
    outputs.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (outputs / "p").symlink_to(elsewhere)
    with pytest.raises(DocumentError, match="outside DATA_VOLUME"):
        FilesSink(outputs, volume).write(_document("docs/a.md"), force=False)
    assert list(elsewhere.iterdir()) == []


def test_a_250_character_name_is_written_under_a_shortened_readable_name(tmp_path: Path) -> None:
    name = "r" * 246 + ".txt"
    sink = FilesSink(tmp_path, tmp_path)
    written, _ = sink.write(_document(f"docs/{name}"), force=False)
    assert Path(written).exists() and len(Path(written).name.encode()) <= NAME_MAX
    assert Path(written).name.startswith("r" * 100) and "~" in Path(written).name
    assert output_name(name, ".md") != output_name("r" * 245 + "s.txt", ".md")  # still unique
    assert output_name("short.txt", ".md") == "short.txt.md"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        written, _ = FilesSink(tmp_path, tmp_path).write(_document("a.md"), force=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(Path(written).stat().st_mode) == 0o666 & ~umask


HOSTILE = [
    "[/].txt",
    "[red]x[/red].txt",
    "[link=file:/etc/passwd]a[/link].md",
    "\x1b]0;PWNED\x07.txt",
    "\x1b[2J.txt",
    "\x1b[41mred.txt",
]


def test_hostile_file_names_are_shown_plain_and_inert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    env = tmp_path / ".env"
    env.write_text("DATA_VOLUME=./data\n")
    ledger = Ledger(tmp_path / "data" / ".openrag-tui" / "ledger.sqlite")
    paths = [str(tmp_path / "data" / name) for name in HOSTILE]
    ledger.add_batch("b1", "p", {}, False, config_of(Settings()), paths, now=1.0)
    for index, path in enumerate(paths):
        ledger.update("b1", index, state=FileState.FAILED, error=f"broken: {Path(path).name}")
    ledger.close()
    for args in (("batches", "show", "b1"), ("batches",), ("batches", "show", "b1", "--json")):
        code = main([*args, "--env", str(env)])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "\x1b" not in out and "\x07" not in out
        if "--json" in args:
            assert {f["path"] for f in json.loads(out)["files"]} == set(paths)
    code = main(["batches", "show", "b1", "--env", str(env)])
    out, _ = capsys.readouterr()
    assert "[/].txt" in out and "[red]x[/red].txt" in out and "\\x1b]0;PWNED\\x07" in out


def test_a_ledger_with_bad_rows_names_them_and_shows_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    (tmp_path / "data").mkdir()
    env = tmp_path / ".env"
    env.write_text("DATA_VOLUME=./data\n")
    path = tmp_path / "data" / ".openrag-tui" / "ledger.sqlite"
    ledger = Ledger(path)
    for batch in ("good", "badjson", "bogus"):
        ledger.add_batch(batch, "p", {}, False, config_of(Settings()), ["/x/a.txt"], now=1.0)
    ledger.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE batches SET metadata = '{not json' WHERE id = 'badjson'")
        db.execute("UPDATE files SET state = 'BOGUS' WHERE batch_id = 'bogus'")
    code = main(["batches", "--json", "--env", str(env)])
    out, err = capsys.readouterr()
    assert code == 0 and {b["batch_id"] for b in json.loads(out)["batches"]} == {"good", "bogus"}
    assert "batch 'badjson' does not read" in err and "Traceback" not in err
    code = main(["batches", "show", "bogus", "--env", str(env)])
    out, err = capsys.readouterr()
    assert code == 0 and "unknown state 'BOGUS'" in err
