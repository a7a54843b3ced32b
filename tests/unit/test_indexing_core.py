"""Batches, the ledger and the paths a batch may take: plain data and SQLite, no cluster."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from openrag_tui.config import Settings
from openrag_tui.indexing import ledger as ledger_module
from openrag_tui.indexing.batch import (
    BadPartition,
    BatchConfig,
    BatchProgress,
    FileState,
    check_partition,
    config_of,
)
from openrag_tui.indexing.ledger import Ledger, LedgerReader, UnknownBatch
from openrag_tui.indexing.paths import BadPath, Where, expand

CONFIG = BatchConfig("pdfium", 300, 50, 200)


def progress(counts: dict[str, int], **times: float) -> BatchProgress:
    return BatchProgress("b", "p", 0.0, {}, False, CONFIG, counts, **times)


def test_progress_rates_and_eta_come_from_the_counts_and_times() -> None:
    running = progress({"COMPLETED": 4, "QUEUED": 4}, pages_done=20, first_start=100.0)
    assert (running.total, running.done, running.state) == (8, 4, "running")
    assert running.files_per_second(now=102.0) == 2.0
    assert running.pages_per_second(now=102.0) == 10.0
    assert running.eta_seconds(now=102.0) == 2.0
    done = progress({"COMPLETED": 3, "SKIPPED": 1}, first_start=0.0, last_finish=2.0)
    assert (done.state, done.succeeded, done.eta_seconds(now=50.0)) == ("done", True, 0.0)
    assert done.files_per_second(now=50.0) == 2.0  # the rate stops at the last finish
    assert progress({"COMPLETED": 1, "FAILED": 1}, first_start=0.0).state == "failed"
    assert progress({"CANCELLED": 2}).state == "cancelled"
    queued = progress({"QUEUED": 2})
    assert (queued.state, queued.eta_seconds(now=5.0), queued.files_per_second(5.0)) == (
        "queued", None, None,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["docs", "Team_A-2.0", "x"])
def test_partition_names_that_make_folders_are_accepted(name: str) -> None:
    assert check_partition(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "..", "with space", "x" * 129])
def test_partition_names_that_are_not_folders_are_refused(name: str) -> None:
    with pytest.raises(BadPartition):
        check_partition(name)


def test_final_states() -> None:
    final = {s for s in FileState if s.final}
    assert final == {FileState.COMPLETED, FileState.FAILED, FileState.SKIPPED, FileState.CANCELLED}


# The ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite")
    ledger.add_batch("b1", "docs", {"k": 1}, False, CONFIG, ["/v/a.pdf", "/v/b.md"], now=10.0)
    return ledger


async def test_updates_in_one_loop_turn_share_one_commit_made_when_it_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, group_commits=True)
    ledger.add_batch("b1", "docs", {}, False, CONFIG, ["/v/a", "/v/b", "/v/c"], now=10.0)
    reader = LedgerReader(path)
    assert ledger.update("b1", 0, when=FileState.QUEUED, state=FileState.CONVERTING)
    assert not ledger.update("b1", 0, when=FileState.QUEUED, state=FileState.CHUNKING)
    ledger.update("b1", 1, state=FileState.CONVERTING)
    assert reader.batch("b1").counts == {"QUEUED": 3}  # nothing on disk yet: one turn
    await asyncio.sleep(0)  # the turn ends
    assert reader.batch("b1").counts == {"CONVERTING": 2, "QUEUED": 1}
    ledger.update("b1", 2, state=FileState.FAILED)
    ledger.commit()  # at once, as a claim before an upload needs
    assert reader.batch("b1").counts == {"CONVERTING": 2, "FAILED": 1}
    ledger.update("b1", 2, state=FileState.QUEUED)
    assert ledger.cancel("b1", now=11.0) == 1  # another write commits what is pending first
    assert reader.batch("b1").counts == {"CONVERTING": 2, "CANCELLED": 1}
    ledger.close()


async def test_group_commits_come_at_most_every_commit_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a stream of updates the loop does not wait on the disk every turn: the turns of
    one COMMIT_SECONDS window share a commit (a second here, so that a slow machine cannot
    close the window before the test looks)."""
    monkeypatch.setattr(ledger_module, "COMMIT_SECONDS", 1.0)
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, group_commits=True)
    ledger.add_batch("b1", "docs", {}, False, CONFIG, ["/v/a", "/v/b", "/v/c"], now=10.0)
    reader = LedgerReader(path)
    commits: list[str] = []
    ledger._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    ledger.update("b1", 0, state=FileState.CONVERTING)
    await asyncio.sleep(0)  # the first turn's commit comes when it ends
    assert (reader.batch("b1").counts, len(commits)) == ({"CONVERTING": 1, "QUEUED": 2}, 1)
    ledger.update("b1", 1, state=FileState.CONVERTING)
    await asyncio.sleep(0)
    ledger.update("b1", 2, state=FileState.CONVERTING)
    await asyncio.sleep(0)
    assert reader.batch("b1").counts == {"CONVERTING": 1, "QUEUED": 2}  # the window is open
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while reader.batch("b1").counts != {"CONVERTING": 3} and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert (reader.batch("b1").counts, len(commits)) == ({"CONVERTING": 3}, 2)
    ledger.close()


async def test_the_writers_queue_window_stays_true_through_every_change(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite", group_commits=True)
    ledger.add_batch("b1", "docs", {}, False, CONFIG, [f"/v/a{n}" for n in range(5)], now=1.0)
    ledger.add_batch("b2", "docs", {}, False, CONFIG, ["/v/b0"], now=2.0)
    selects: list[str] = []
    ledger._db.set_trace_callback(
        lambda sql: selects.append(sql) if sql.startswith("SELECT files.*") else None
    )

    def first(limit: int, busy: frozenset = frozenset()) -> list[tuple[str, int]]:
        return [(t.batch_id, t.index) for t in ledger.queued(limit, set(busy))]

    assert first(2) == [("b1", 0), ("b1", 1)]
    assert first(2, frozenset({("b1", 0)})) == [("b1", 1), ("b1", 2)]
    ledger.update("b1", 0, when=FileState.QUEUED, state=FileState.CONVERTING)  # claimed
    ledger.update("b1", 1, state=FileState.COMPLETED)
    assert first(2) == [("b1", 2), ("b1", 3)]
    assert len(selects) == 1  # one read served all of that
    ledger.update("b1", 0, state=FileState.QUEUED)  # lost: queued again, in its place
    assert first(2) == [("b1", 0), ("b1", 2)]
    ledger.cancel("b1", now=3.0)
    assert first(3) == [("b2", 0)]
    ledger.pause("b2", "the token was refused")
    assert first(3) == []
    ledger.pause("b2", None)
    ledger.add_batch("b3", "docs", {}, False, CONFIG, ["/v/c0"], now=4.0)
    assert first(3) == [("b2", 0), ("b3", 0)]
    ledger.close()


def test_a_document_was_written_before_once_any_batch_of_its_partition_claimed_it(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.add_batch("b1", "docs", {}, False, CONFIG, ["/v/a", "/v/b"], now=1.0)
    ledger.add_batch("b2", "docs", {}, False, CONFIG, ["/v/a"], now=2.0)
    ledger.add_batch("b3", "other", {}, False, CONFIG, ["/v/b"], now=3.0)
    assert not ledger.written_before("docs", "/v/a", ("b2", 0))  # only queued so far
    ledger.update("b1", 0, state=FileState.CONVERTING, attempts=1)  # claimed, maybe half written
    assert ledger.written_before("docs", "/v/a", ("b2", 0))
    assert not ledger.written_before("docs", "/v/a", ("b1", 0))  # itself does not count
    ledger.update("b1", 1, state=FileState.COMPLETED, attempts=1)
    assert not ledger.written_before("other", "/v/b", ("b3", 0))  # another partition


def test_the_chunks_in_our_collection_count_no_batch_into_openrag(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    settings = Settings(collection="c")
    ledger.add_batch("b1", "docs", {}, False, config_of(settings), ["/v/a"], now=1.0)
    ledger.add_batch("b2", "ops", {}, False, config_of(settings, target="openrag"), ["/v/b"], 2.0)
    ledger.update("b1", 0, state=FileState.COMPLETED, chunks=3, finished_at=3.0)
    ledger.update("b2", 0, state=FileState.COMPLETED, finished_at=4.0)  # OpenRAG's, no chunks
    assert LedgerReader(ledger.path).indexed_chunks("c") == {"docs": 3}


def test_without_a_running_loop_every_update_commits_at_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite", group_commits=True)
    ledger.add_batch("b1", "docs", {}, False, CONFIG, ["/v/a"], now=10.0)
    ledger.update("b1", 0, state=FileState.CONVERTING)
    assert LedgerReader(ledger.path).batch("b1").counts == {"CONVERTING": 1}


def test_a_batch_is_recorded_with_every_file_queued(ledger: Ledger) -> None:
    reader = LedgerReader(ledger.path)
    (batch,) = reader.batches()
    assert (batch.batch_id, batch.metadata, batch.config, batch.counts) == (
        "b1", {"k": 1}, CONFIG, {"QUEUED": 2},
    )  # fmt: skip
    assert [(t.index, t.path, t.state) for t in reader.files("b1")] == [
        (0, "/v/a.pdf", FileState.QUEUED),
        (1, "/v/b.md", FileState.QUEUED),
    ]
    with pytest.raises(UnknownBatch):
        reader.files("nope")


def test_a_missing_ledger_reads_as_no_batches(tmp_path: Path) -> None:
    assert LedgerReader(tmp_path / "none.sqlite").batches() == []


def test_the_queue_skips_files_already_running(ledger: Ledger) -> None:
    assert [t.index for t in ledger.queued(5, busy={("b1", 0)})] == [1]
    assert [t.index for t in ledger.queued(1, busy=set())] == [0]


def test_a_restart_requeues_running_files_within_their_attempts(ledger: Ledger) -> None:
    ledger.update("b1", 0, state=FileState.CHUNKING, attempts=1)
    ledger.update("b1", 1, state=FileState.CONVERTING, attempts=3)
    assert ledger.requeue_running(max_attempts=3, now=20.0) == 1
    first, second = ledger.files("b1")
    assert (first.state, first.attempts) == (FileState.QUEUED, 1)
    assert second.state is FileState.FAILED and "gave up after 3 attempts" in second.error


def test_same_content_is_found_in_the_partition_only(ledger: Ledger) -> None:
    ledger.update("b1", 0, state=FileState.COMPLETED, content_hash="h")
    ledger.add_batch("b2", "docs", {}, False, CONFIG, ["/v/c.pdf"], now=11.0)
    ledger.add_batch("b3", "other", {}, False, CONFIG, ["/v/c.pdf"], now=12.0)
    found = ledger.same_content("docs", "h", exclude=("b2", 0))
    assert found is not None and found.path == "/v/a.pdf"
    assert ledger.same_content("other", "h", exclude=("b3", 0)) is None
    assert ledger.same_content("docs", "h", exclude=("b1", 0)) is None


def test_cancel_stops_queued_files_and_retry_requeues_failed_ones(ledger: Ledger) -> None:
    ledger.update("b1", 0, state=FileState.FAILED, attempts=3, error="broken")
    assert ledger.cancel("b1", now=30.0) == 1
    assert ledger.retry("b1", now=40.0) == 1
    first, second = ledger.files("b1")
    # attempts keep counting (the operator sees 3, then 4); the budget starts again from 3
    assert (first.state, first.attempts, first.budget, first.error) == (
        FileState.QUEUED, 3, 3, None,
    )  # fmt: skip
    assert second.state is FileState.CANCELLED


def test_only_ledger_columns_can_be_updated(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="not ledger columns"):
        ledger.update("b1", 0, path="/elsewhere")


# Paths


@pytest.fixture
def where(tmp_path: Path) -> Where:
    settings = Settings.from_values({"DATA_VOLUME": "data"})
    (tmp_path / "data" / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "data" / ".openrag-tui").mkdir()
    return Where.of(settings, tmp_path)


def test_where_resolves_the_volume_from_the_env_folder(where: Where, tmp_path: Path) -> None:
    assert where.volume == (tmp_path / "data").resolve()
    assert where.ledger == where.volume / ".openrag-tui" / "ledger.sqlite"
    custom = Settings.from_values({"DATA_VOLUME": "data", "OPENRAG_TUI_LEDGER": "data/l.db"})
    assert Where.of(custom, tmp_path).ledger == tmp_path / "data" / "l.db"
    outside = Settings.from_values({"DATA_VOLUME": "data", "OPENRAG_TUI_LEDGER": "l.db"})
    with pytest.raises(BadPath, match=r"the ledger .* outside DATA_VOLUME"):
        Where.of(outside, tmp_path)


def test_folders_are_taken_recursively_without_hidden_files(where: Where) -> None:
    docs = where.volume / "docs"
    for name in ("b.txt", "a.md", "sub/c.html", ".hidden.txt"):
        (docs / name).write_text("x")
    (where.volume / ".openrag-tui" / "ledger.sqlite").write_text("x")
    found = expand(["data"], where, where.volume.parent).files
    assert [Path(p).relative_to(where.volume).as_posix() for p in found] == [
        "docs/a.md", "docs/b.txt", "docs/sub/c.html",
    ]  # fmt: skip
    assert expand(["docs/*.md", "docs/a.md"], where, where.volume).files == (str(docs / "a.md"),)


def test_paths_outside_the_volume_are_refused_symlinks_included(
    where: Where, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    (where.volume / "docs" / "link.txt").symlink_to(outside)
    for argument in (str(outside), "data/docs", "data/docs/link.txt", "data/../secret.txt"):
        with pytest.raises(BadPath, match="outside DATA_VOLUME"):
            expand([argument], where, tmp_path)


@pytest.mark.parametrize(
    ("argument", "message"),
    [("data/nothing.pdf", "no such file"), ("data/*.zip", "matches no file"),
     ("data/docs", "nothing to index")],
)  # fmt: skip
def test_bad_arguments_say_why(where: Where, argument: str, message: str) -> None:
    with pytest.raises(BadPath, match=message):
        expand([argument], where, where.volume.parent)


def test_readers_recover_from_a_writer_killed_mid_transaction(ledger: Ledger) -> None:
    """A hot journal is rolled back by the next reader; it sees the last committed state."""
    script = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA cache_size=1')\n"
        "db.execute('BEGIN IMMEDIATE')\n"
        "db.executemany('INSERT INTO files (batch_id, idx, path, state) VALUES (?, ?, ?, ?)',"
        " [('b1', i, 'x' * 500, 'QUEUED') for i in range(2, 2000)])\n"
        "os._exit(9)\n"
    )
    ledger.close()
    killed = subprocess.run([sys.executable, "-c", script, str(ledger.path)], timeout=60)
    assert killed.returncode == 9
    assert Path(f"{ledger.path}-journal").exists()  # hot: the writer died holding it
    assert LedgerReader(ledger.path).batch("b1").counts == {"QUEUED": 2}


def test_a_glob_works_when_the_volume_lies_under_a_hidden_folder(tmp_path: Path) -> None:
    """The demo's own volume is ~/.local/state/openrag-tui/demo/data: hidden parts above the
    volume are not the files' own, and wildcards still skip hidden files inside it."""
    volume = tmp_path / ".local" / "state" / "data"
    (volume / "docs").mkdir(parents=True)
    for name in ("a.pdf", "b.pdf", ".hidden.pdf"):
        (volume / "docs" / name).write_bytes(b"%PDF-1.4")
    (volume / ".openrag-tui").mkdir()
    (volume / ".openrag-tui" / "x.pdf").write_bytes(b"%PDF-1.4")
    where = Where(volume, volume / ".openrag-tui" / "ledger.sqlite", volume / ".openrag-tui")
    for cwd in (volume, tmp_path):  # from inside the volume, and from elsewhere (then inside)
        found = expand(["docs/*.pdf"], where, cwd).files
        assert [Path(p).name for p in found] == ["a.pdf", "b.pdf"]
    found = expand(["**/*.pdf"], where, volume).files
    assert [Path(p).relative_to(volume).as_posix() for p in found] == ["docs/a.pdf", "docs/b.pdf"]


def test_after_a_retry_rates_count_from_the_retry_not_from_the_first_start(
    ledger: Ledger,
) -> None:
    """A retried batch reads `–` until a retried file finishes, then the rate since the retry
    (its old run, long ago, does not drag the rate to 0.0)."""
    ledger.update("b1", 0, state=FileState.COMPLETED, started_at=10.0, finished_at=20.0, pages=2)
    ledger.update("b1", 1, state=FileState.FAILED, attempts=1, started_at=10.0, finished_at=20.0)
    assert ledger.retry("b1", now=1000.0) == 1
    progress = ledger.batch("b1")
    assert progress.files_per_second(1010.0) is None and progress.eta_seconds(1010.0) is None
    ledger.update("b1", 1, state=FileState.COMPLETED, attempts=2, started_at=1001.0,
                  finished_at=1004.0, pages=4)  # fmt: skip
    progress = ledger.batch("b1")
    assert progress.finished and progress.files_per_second(2000.0) == 1 / 4.0
    assert progress.pages_per_second(2000.0) == 4 / 4.0
