"""The durable record of every batch and every file's state: one SQLite file on the data volume.

Rollback-journal mode (not WAL: WAL's shared memory does not work across NFS/GlusterFS clients),
full fsync, one writer (the coordinator) and any number of readers (the CLI, the panel), who never
write but may roll back what a killed writer left half-done. A crash at any moment leaves the
last committed state, from which the coordinator resumes.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from openrag_tui.indexing.batch import (
    OPENRAG_STATES,
    RUNNING_STATES,
    BatchConfig,
    BatchProgress,
    FileState,
    FileTask,
)

BUSY_TIMEOUT_SECONDS = 30.0
#: group commits come at most this often: each is a few fsyncs on the event loop, and at a few
#: hundred files a second one per loop turn kept the loop waiting on the disk
COMMIT_SECONDS = 0.05
T = TypeVar("T")

_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    partition TEXT NOT NULL,
    metadata TEXT NOT NULL,
    force INTEGER NOT NULL,
    pdf_loader TEXT NOT NULL,
    chunk_size INTEGER NOT NULL,
    chunk_overlap INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    batch_id TEXT NOT NULL REFERENCES batches(id),
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    content_hash TEXT,
    pages INTEGER,
    chunks INTEGER,
    output TEXT,
    queued_at REAL,
    started_at REAL,
    finished_at REAL,
    PRIMARY KEY (batch_id, idx)
);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
CREATE INDEX IF NOT EXISTS files_hash ON files(content_hash);
CREATE INDEX IF NOT EXISTS files_path ON files(path);
"""
#: columns added since the first schema: a writer adds them to an older ledger on opening it
_ADDED_COLUMNS = {
    "batches": {
        "config": "TEXT",  # the BatchConfig as JSON
        "retried_at": "REAL",
        "target": "TEXT NOT NULL DEFAULT 'pools'",  # pools, or openrag
        "paused": "TEXT",  # why none of its files starts now (OpenRAG refused the token)
    },
    "files": {
        "budget": "INTEGER NOT NULL DEFAULT 0",  # attempts used before the last retry
        "forgotten": "INTEGER NOT NULL DEFAULT 0",  # removed from its sink by `forget`
        "task_id": "TEXT",  # OpenRAG's task for the file, once OpenRAG acknowledged the upload
        "openrag_state": "TEXT",  # that task's state as OpenRAG last said it
    },
}
_UPDATABLE = {
    "state", "attempts", "error", "content_hash", "pages", "chunks", "output",
    "started_at", "finished_at", "task_id", "openrag_state",
}  # fmt: skip


#: queued files read at once into the writer's window
QUEUE_WINDOW = 512


@dataclass
class _Window:
    """The oldest QUEUED files of a target, in order, as the writer knows them."""

    files: dict[tuple[str, int], FileTask]
    more: bool  # the ledger holds more than were read

    def available(self, busy: set[tuple[str, int]]) -> int:
        return sum(1 for key in self.files if key not in busy)

    def first(self, limit: int, busy: set[tuple[str, int]]) -> list[FileTask]:
        found: list[FileTask] = []
        for key, task in self.files.items():
            if len(found) == limit:
                break
            if key not in busy:
                found.append(task)
        return found


class LedgerError(Exception):
    """The ledger cannot be read or written (a message for the operator)."""


class UnknownBatch(LedgerError):
    """No batch with that id."""


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    try:
        if read_only:
            connection = _reader(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            connection.execute("PRAGMA journal_mode=DELETE")
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(_SCHEMA)
            _add_missing_columns(connection)
    except (OSError, sqlite3.Error) as error:
        raise LedgerError(f"cannot open the ledger {path}: {_why(path, error)}") from None
    connection.row_factory = sqlite3.Row
    return connection


def _why(path: Path, error: BaseException) -> str:
    """SQLite's words, and the likely cause where they are vague ("unable to open")."""
    said = getattr(error, "strerror", None) or str(error)
    folder = path.parent
    if folder.exists() and not os.access(folder, os.W_OK):
        return f"{said} (its folder {folder} is read-only here)"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{said} (the file is read-only here)"
    return said


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in present:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _reader(path: Path) -> sqlite3.Connection:
    """Readers write nothing, but open read-write when they may: a writer killed mid-commit
    leaves a hot journal that the next connection must roll back, and a read-only one fails."""
    try:
        return sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
    except sqlite3.OperationalError:  # a volume mounted read-only here
        return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)


class BadRow(LedgerError):
    """A row of the ledger that does not read (a hand edit, another program): named, skipped."""


def _task(row: sqlite3.Row) -> FileTask:
    try:
        state = FileState(row["state"])
    except ValueError:
        raise BadRow(
            f"file {row['idx']} of batch {row['batch_id']} has an unknown state "
            f"{row['state']!r}: left out"
        ) from None
    return FileTask(
        batch_id=row["batch_id"],
        index=row["idx"],
        path=row["path"],
        state=state,
        attempts=row["attempts"],
        budget=_column(row, "budget", 0),
        error=row["error"],
        content_hash=row["content_hash"],
        pages=row["pages"],
        chunks=row["chunks"],
        output=row["output"],
        queued_at=row["queued_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        task_id=_column(row, "task_id", None),
        openrag_state=_column(row, "openrag_state", None),
    )


@dataclass(frozen=True)
class PoolBacklog:
    """Files of batches into our pools not finished yet, as one pool sees them."""

    queued: int = 0
    running: int = 0
    batches: tuple[str, ...] = ()


class LedgerReader:
    """Read-only views for the CLI and the panel; a missing ledger reads as no batches."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: rows the last read left out because they do not read, each named in a sentence
        self.problems: list[str] = []

    @contextmanager
    def _rows(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.exists():
            yield None
            return
        with closing(_connect(self.path, read_only=True)) as connection:
            try:
                yield connection
            except sqlite3.Error as error:
                raise LedgerError(f"cannot read the ledger {self.path}: {error}") from None

    def batches(self) -> list[BatchProgress]:
        """Every batch, newest first, with its per-state counts (bad rows in `problems`)."""
        self.problems = []
        with self._rows() as db:
            if db is None:
                return []
            rows = db.execute("SELECT * FROM batches ORDER BY created_at DESC, id").fetchall()
            return self._readable(lambda row: _progress(db, row), rows)

    def _readable(self, read: Callable[[sqlite3.Row], T], rows: Iterable[sqlite3.Row]) -> list[T]:
        found = []
        for row in rows:
            try:
                found.append(read(row))
            except BadRow as bad:
                self.problems.append(str(bad))
        return found

    def indexed_chunks(self, collection: str) -> dict[str, int]:
        """Chunks per partition that the ledger says are in this vector-index collection: the
        last completed write of each document, unless forgotten since."""
        with self._rows() as db:
            if db is None:
                return {}
            present = {row[1] for row in db.execute("PRAGMA table_info(files)")}
            forgotten = "AND NOT f.forgotten" if "forgotten" in present else ""
            columns = _columns(db, "batches")
            if "config" not in columns:
                return {}
            ours = "AND b.target = 'pools'" if "target" in columns else ""  # not OpenRAG's
            rows = db.execute(
                "SELECT partition, SUM(chunks) FROM ("
                " SELECT b.partition AS partition, f.chunks AS chunks, MAX(f.finished_at)"
                " FROM files f JOIN batches b ON b.id = f.batch_id"
                " WHERE f.state = 'COMPLETED' AND json_extract(b.config, '$.sink') = 'milvus'"
                f" AND json_extract(b.config, '$.collection') = ? {forgotten} {ours}"
                " GROUP BY b.partition, f.path"
                ") GROUP BY partition",
                (collection,),
            ).fetchall()
            return {partition: int(total or 0) for partition, total in rows}

    def backlog(self) -> dict[str, PoolBacklog]:
        """Per pool, the files of batches into our pools still queued or running: every such
        file for the indexer, the PDFs of batches converted with marker for the marker pool."""
        running = tuple(state.value for state in RUNNING_STATES)
        states = (FileState.QUEUED.value, *running)
        found: dict[str, dict[str, Any]] = {
            pool: {"queued": 0, "running": 0, "batches": set()} for pool in ("indexer", "marker")
        }
        with self._rows() as db:
            if db is not None:
                ours = "AND b.target = 'pools'" if "target" in _columns(db, "batches") else ""
                marks = ", ".join("?" * len(states))
                rows = db.execute(
                    "SELECT f.batch_id, f.state = 'QUEUED', lower(f.path) LIKE '%.pdf'"
                    " AND b.pdf_loader LIKE 'marker%', COUNT(*)"
                    " FROM files f JOIN batches b ON b.id = f.batch_id"
                    f" WHERE f.state IN ({marks}) {ours} GROUP BY 1, 2, 3",
                    states,
                ).fetchall()
                for batch_id, queued, marker, count in rows:
                    for pool in ("indexer", "marker") if marker else ("indexer",):
                        entry = found[pool]
                        entry["queued" if queued else "running"] += count
                        entry["batches"].add(batch_id)
        return {
            pool: PoolBacklog(entry["queued"], entry["running"], tuple(sorted(entry["batches"])))
            for pool, entry in found.items()
        }

    def openrag_in_flight(self) -> int:
        """Our files uploading to or inside OpenRAG, over every batch."""
        states = tuple(s.value for s in OPENRAG_STATES)
        marks = ", ".join("?" * len(states))
        with self._rows() as db:
            if db is None or "target" not in _columns(db, "batches"):
                return 0
            return db.execute(
                "SELECT COUNT(*) FROM files JOIN batches ON batches.id = files.batch_id "
                f"WHERE batches.target = 'openrag' AND state IN ({marks})",
                states,
            ).fetchone()[0]

    def has_target(self, target: str) -> bool:
        """Whether any batch went to this target."""
        with self._rows() as db:
            if db is None or "target" not in _columns(db, "batches"):
                return False
            found = db.execute("SELECT 1 FROM batches WHERE target = ? LIMIT 1", (target,))
            return found.fetchone() is not None

    def batch(self, batch_id: str) -> BatchProgress:
        with self._rows() as db:
            row = None if db is None else _batch_row(db, batch_id)
            if row is None:
                raise UnknownBatch(f"no batch {batch_id!r} in {self.path}")
            return _progress(db, row)  # type: ignore[arg-type]

    def files(self, batch_id: str) -> list[FileTask]:
        """The batch's files in submission order."""
        batch_id = self.batch(batch_id).batch_id
        self.problems = []
        with self._rows() as db:
            assert db is not None
            rows = db.execute(
                "SELECT files.* FROM files WHERE batch_id = ? ORDER BY idx", (batch_id,)
            ).fetchall()
            return self._readable(_task, rows)


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _column(row: sqlite3.Row, name: str, default: Any) -> Any:
    """A column an older ledger may lack (until its writer adds it)."""
    return row[name] if name in row.keys() else default  # noqa: SIM118 - Row has no __contains__


def _batch_row(db: sqlite3.Connection, batch_id: str) -> sqlite3.Row | None:
    """The batch with this id, or the one batch whose id starts or ends with it (ids are long:
    `20261201-093012-ab12` can be named `ab12` or `093012-ab12`)."""
    row = db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
    if row is not None or not batch_id:
        return row
    size = len(batch_id)
    rows = db.execute(
        "SELECT * FROM batches WHERE substr(id, 1, ?) = ? OR substr(id, -?) = ? "
        "ORDER BY created_at DESC LIMIT 6",
        (size, batch_id, size, batch_id),
    ).fetchall()
    if len(rows) > 1:
        names = ", ".join(r["id"] for r in rows[:5])
        raise UnknownBatch(f"{batch_id!r} names more than one batch ({names}): give more of it")
    return rows[0] if rows else None


def _progress(db: sqlite3.Connection, row: sqlite3.Row) -> BatchProgress:
    """A batch's progress; BadRow when its row does not read."""
    known = tuple(state.value for state in FileState)
    marks = ", ".join("?" * len(known))
    counts = dict(
        db.execute(
            f"SELECT state, COUNT(*) FROM files WHERE batch_id = ? AND state IN ({marks}) "
            "GROUP BY state",
            (row["id"], *known),
        ).fetchall()
    )
    retried_at = _column(row, "retried_at", None)
    pages, first, last, since, pages_since = db.execute(
        "SELECT COALESCE(SUM(CASE WHEN state = 'COMPLETED' THEN pages END), 0), "
        "MIN(started_at), MAX(finished_at), COUNT(CASE WHEN finished_at >= ?1 THEN 1 END), "
        "COALESCE(SUM(CASE WHEN state = 'COMPLETED' AND finished_at >= ?1 THEN pages END), 0) "
        "FROM files WHERE batch_id = ?2",
        (retried_at if retried_at is not None else float("inf"), row["id"]),
    ).fetchone()
    try:
        metadata = json.loads(row["metadata"])
        config = _config(row)
    except (ValueError, TypeError) as error:
        raise BadRow(f"batch {row['id']!r} does not read ({error}): left out") from None
    if not isinstance(metadata, dict):
        raise BadRow(f"batch {row['id']!r} has metadata that is not an object: left out")
    return BatchProgress(
        batch_id=row["id"],
        partition=row["partition"],
        created_at=row["created_at"],
        metadata=metadata,
        force=bool(row["force"]),
        config=config,
        counts=counts,
        pages_done=pages,
        first_start=first,
        last_finish=last,
        retried_at=retried_at,
        done_since_retry=since,
        pages_since_retry=pages_since,
        paused=_column(row, "paused", None),
    )


def _config(row: sqlite3.Row) -> BatchConfig:
    """The batch's config: its JSON, or (an older ledger) the first three columns."""
    stored = _column(row, "config", None)
    if stored:
        return BatchConfig.from_dict(json.loads(stored))
    return BatchConfig.from_dict(
        {
            "pdf_loader": row["pdf_loader"],
            "chunk_size": row["chunk_size"],
            "chunk_overlap": row["chunk_overlap"],
        }
    )


class Ledger(LedgerReader):
    """The writer's side: only the coordinator holds one.

    With `group_commits`, the files' updates made in one turn of the running event loop share
    one transaction, committed when the turn ends (one fsync for all of them, not one each), or,
    when the last group commit is less than COMMIT_SECONDS old, with the other turns' until
    then. A crash loses at most those updates: the same as a crash a moment earlier, which the
    coordinator recovers from anyway. Where an update must be on disk before something leaves
    the process (a claim before an upload, OpenRAG's task id), `commit()` makes it so at once.
    Every other write commits what is pending first, then itself."""

    def __init__(self, path: Path, group_commits: bool = False) -> None:
        super().__init__(path)
        self._db = _connect(path, read_only=False)
        self._group_commits = group_commits
        self._pending = False  # a group transaction is open
        self._committed_at = 0.0  # when the last group commit was made (monotonic)
        #: per target, the oldest QUEUED files as last read, in order (the pump asks for a few
        #: after every file that ends: reading and sorting every queued file each time cost a
        #: fifth of the coordinator's time at 4,000 queued); a target missing: read again
        self._windows: dict[str, _Window] = {}

    def close(self) -> None:
        self.commit()
        self._db.close()

    def commit(self) -> None:
        """Commit the updates pending in the open group transaction, if any."""
        if not self._pending:
            return
        self._pending = False
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._windows.clear()  # the turn's changes are gone: read the queue again
            raise LedgerError(
                f"cannot write the ledger {self.path}: {_why(self.path, error)}"
            ) from None

    def _commit_at_turn_end(self) -> None:
        self._committed_at = time.monotonic()
        try:
            self.commit()
        except LedgerError:  # the files' updates are lost: they run again after a restart
            _log.exception("a group commit of the ledger failed")

    def _grouped(self) -> bool:
        """Open the turn's group transaction (True), or say there is none to join (False)."""
        if self._pending:
            return True
        if not self._group_commits:
            return False
        import asyncio  # here: the readers (`status`, the panel) never need it

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise LedgerError(
                f"cannot write the ledger {self.path}: {_why(self.path, error)}"
            ) from None
        self._pending = True
        wait = self._committed_at + COMMIT_SECONDS - time.monotonic()
        if wait > 0:
            loop.call_later(wait, self._commit_at_turn_end)
        else:
            loop.call_soon(self._commit_at_turn_end)
        return True

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self.commit()
        self._windows.clear()  # a write of many rows: which files are queued is read again
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as error:
            raise LedgerError(
                f"cannot write the ledger {self.path}: {_why(self.path, error)}"
            ) from None

    def add_batch(
        self,
        batch_id: str,
        partition: str,
        metadata: dict[str, Any],
        force: bool,
        config: BatchConfig,
        paths: Iterable[str],
        now: float,
    ) -> None:
        """The batch and every file QUEUED, in one transaction: all or nothing."""
        with self._write() as db:
            db.execute(
                "INSERT INTO batches (id, partition, metadata, force, pdf_loader, chunk_size, "
                "chunk_overlap, created_at, config, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch_id, partition, json.dumps(metadata), int(force), config.pdf_loader,
                    config.chunk_size, config.chunk_overlap, now, json.dumps(config.to_dict()),
                    config.target,
                ),
            )  # fmt: skip
            db.executemany(
                "INSERT INTO files (batch_id, idx, path, state, queued_at) VALUES (?, ?, ?, ?, ?)",
                [(batch_id, i, path, FileState.QUEUED.value, now) for i, path in enumerate(paths)],
            )

    def update(
        self, batch_id: str, index: int, when: FileState | None = None, **values: Any
    ) -> bool:
        """Set a file's columns; with `when`, only if it is in that state. Whether it changed."""
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"not ledger columns: {sorted(unknown)}")
        values = {k: v.value if isinstance(v, FileState) else v for k, v in values.items()}
        assignments = ", ".join(f"{column} = ?" for column in values)
        condition = "" if when is None else " AND state = ?"
        statement = f"UPDATE files SET {assignments} WHERE batch_id = ? AND idx = ?{condition}"
        parameters = (*values.values(), batch_id, index, *([] if when is None else [when.value]))
        if not self._grouped():
            with self._write() as db:
                return db.execute(statement, parameters).rowcount == 1
        try:
            changed = self._db.execute(statement, parameters).rowcount == 1
        except sqlite3.Error as error:
            raise LedgerError(
                f"cannot write the ledger {self.path}: {_why(self.path, error)}"
            ) from None
        self._left_queue((batch_id, index), values.get("state"))
        return changed

    def queued(
        self, limit: int, busy: set[tuple[str, int]], target: str = "pools"
    ) -> list[FileTask]:
        """The oldest QUEUED files of the target's batches not already being run (nor of a
        paused batch), oldest batch first. Served from a window of them read once, which this
        writer keeps true: every change of a file's state passes through it."""
        window = self._windows.get(target)
        if window is None or (window.more and window.available(busy) < limit):
            wanted = max(QUEUE_WINDOW, limit + len(busy))
            rows = self._db.execute(
                "SELECT files.* FROM files JOIN batches ON batches.id = files.batch_id "
                "WHERE state = 'QUEUED' AND batches.target = ? AND batches.paused IS NULL "
                "ORDER BY batches.created_at, batch_id, idx LIMIT ?",
                (target, wanted),
            ).fetchall()
            tasks = [_task(row) for row in rows]
            window = _Window({(t.batch_id, t.index): t for t in tasks}, len(rows) == wanted)
            self._windows[target] = window
        return window.first(limit, busy)

    def _left_queue(self, key: tuple[str, int], state: Any) -> None:
        """A file's state changes: out of the windows, or back in the queue (read again)."""
        if state is None:
            return
        if state == FileState.QUEUED.value:
            self._windows.clear()  # its place in the order is the ledger's to say
            return
        for window in self._windows.values():
            window.files.pop(key, None)

    def same_content(
        self, partition: str, content_hash: str, exclude: tuple[str, int], target: str = "pools"
    ) -> FileTask | None:
        """Another file of the partition and target with this content that completed or is
        running."""
        states = tuple(s.value for s in (FileState.COMPLETED, *RUNNING_STATES, *OPENRAG_STATES))
        marks = ", ".join("?" * len(states))
        rows = self._db.execute(
            "SELECT files.* FROM files JOIN batches ON batches.id = files.batch_id "
            f"WHERE partition = ? AND content_hash = ? AND state IN ({marks}) AND NOT forgotten"
            " AND batches.target = ? ORDER BY state = 'COMPLETED' DESC",
            (partition, content_hash, *states, target),
        ).fetchall()
        found = [_task(row) for row in rows if (row["batch_id"], row["idx"]) != exclude]
        return found[0] if found else None

    def written_before(self, partition: str, path: str, exclude: tuple[str, int]) -> bool:
        """Whether any other file of the partition's batches with this path was ever claimed
        (its sink may hold a version of it, whole or in part)."""
        row = self._db.execute(
            "SELECT 1 FROM files JOIN batches ON batches.id = files.batch_id "
            "WHERE files.path = ? AND batches.partition = ? AND files.attempts > 0 "
            "AND NOT (files.batch_id = ? AND files.idx = ?) LIMIT 1",
            (path, partition, *exclude),
        ).fetchone()
        return row is not None

    def requeue_running(self, max_attempts: int, now: float) -> int:
        """After a coordinator restart: files of the pools left mid-way run again, within
        their attempts. (Files inside OpenRAG are followed again instead: `in_openrag`.)"""
        running = tuple(s.value for s in RUNNING_STATES)
        marks = ", ".join("?" * len(running))
        pools = "batch_id IN (SELECT id FROM batches WHERE target = 'pools')"
        with self._write() as db:
            db.execute(
                f"UPDATE files SET state = 'FAILED', finished_at = ?, error = "
                f"'gave up after ' || (attempts - budget) || ' attempts (the coordinator ended "
                f"each time)' WHERE state IN ({marks}) AND attempts - budget >= ? AND {pools}",
                (now, *running, max_attempts),
            )
            return db.execute(
                f"UPDATE files SET state = 'QUEUED' WHERE state IN ({marks}) AND {pools}", running
            ).rowcount

    def in_openrag(self) -> list[FileTask]:
        """Files of batches into OpenRAG that were uploading or inside OpenRAG (a coordinator
        that starts follows them again: none is uploaded twice without cause)."""
        states = tuple(s.value for s in OPENRAG_STATES)
        marks = ", ".join("?" * len(states))
        rows = self._db.execute(
            "SELECT files.* FROM files JOIN batches ON batches.id = files.batch_id "
            f"WHERE state IN ({marks}) AND batches.target = 'openrag' ORDER BY batch_id, idx",
            states,
        ).fetchall()
        return [_task(row) for row in rows]

    def pause(self, batch_id: str, reason: str | None) -> None:
        """A batch none of whose files starts until `reason` is gone (None: goes on)."""
        with self._write() as db:
            db.execute("UPDATE batches SET paused = ? WHERE id = ?", (reason, batch_id))

    def paused_batches(self) -> dict[str, str]:
        return dict(
            self._db.execute("SELECT id, paused FROM batches WHERE paused IS NOT NULL").fetchall()
        )

    def forget(self, partition: str, paths: list[str]) -> int:
        """These files of the partition are no longer indexed: the same content is not SKIPPED
        next time (their history stays)."""
        marks = ", ".join("?" * len(paths))
        with self._write() as db:
            return db.execute(
                f"UPDATE files SET forgotten = 1 WHERE path IN ({marks}) AND batch_id IN "
                "(SELECT id FROM batches WHERE partition = ?)",
                (*paths, partition),
            ).rowcount

    def cancel(self, batch_id: str, now: float) -> int:
        """QUEUED files become CANCELLED; files already running finish."""
        batch_id = self.batch(batch_id).batch_id
        with self._write() as db:
            return db.execute(
                "UPDATE files SET state = 'CANCELLED', finished_at = ? "
                "WHERE batch_id = ? AND state = 'QUEUED'",
                (now, batch_id),
            ).rowcount

    def retry(self, batch_id: str, now: float) -> int:
        """FAILED files go back to QUEUED with a fresh budget of attempts (`attempts` keeps
        counting every attempt; `budget` is where the new budget starts); the batch's rates
        count from now."""
        batch_id = self.batch(batch_id).batch_id
        with self._write() as db:
            count = db.execute(
                "UPDATE files SET state = 'QUEUED', budget = attempts, error = NULL, "
                "started_at = NULL, finished_at = NULL WHERE batch_id = ? AND state = 'FAILED'",
                (batch_id,),
            ).rowcount
            if count:
                db.execute("UPDATE batches SET retried_at = ? WHERE id = ?", (now, batch_id))
            return count
