"""Indexing batches on the real two-node cluster: states, outputs, skips, refusals, and deaths
(a pool actor, the coordinator, the submitting process) that lose nothing and write nothing twice.

One deployment (namespace `ortui-ix-<uuid>`, its own data volume) serves the module and is torn
down at its end, coordinator included, so the shared cluster is left as found.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray

from openrag_tui.config import EnvFile, Settings
from openrag_tui.indexing import api
from openrag_tui.indexing.batch import RUNNING_STATES, BatchProgress, FileState
from openrag_tui.indexing.coordinator import COORDINATOR_NAME
from openrag_tui.indexing.paths import Where
from openrag_tui.pools import control
from openrag_tui.pools.roster import Phase
from tests.support.cli import run_cli
from tests.support.documents import Expected, pdf_bytes, write_corpus
from tests.support.raycluster import TestCluster, wait_until

NAMESPACE = f"ortui-ix-{uuid.uuid4().hex[:8]}"
ENV = """\
RAY_POOL_SIZE=2
RAY_NUM_GPUS=0.1
RAY_MAX_TASKS_PER_WORKER=3
MARKER_POOL_SIZE=1
MARKER_NUM_GPUS=0.1
MARKER_MAX_PROCESSES=2
MARKER_MAX_TASKS_PER_CHILD=50
DATA_VOLUME=./data
OPENRAG_TUI_CHUNK_SIZE=300
OPENRAG_TUI_CHUNK_OVERLAP=50
OPENRAG_TUI_NAMESPACE={namespace}
OPENRAG_TUI_SINK=files
RAY_HEAD_ADDRESS={address}
"""
BATCH_SECONDS = 60


@dataclass(frozen=True)
class Setup:
    env_file: Path
    settings: Settings
    where: Where

    @property
    def data(self) -> Path:
        return self.where.volume


def cli(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env_file=setup.env_file, cwd=setup.env_file.parent, timeout=120)


def end_namespace(namespace: str) -> None:
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == namespace:
            ray.kill(ray.get_actor(entry["name"], namespace=namespace), no_restart=True)


@pytest.fixture(scope="module")
def setup(ray_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("indexing")
    (folder / "data").mkdir()
    env_file = folder / ".env"
    env_file.write_text(ENV.format(namespace=NAMESPACE, address=ray_cluster.gcs_address))
    settings = Settings.from_envfile(EnvFile.read(env_file))
    control.connect(settings)
    try:
        control.deploy(settings)
        for pool, size in (("indexer", 2), ("marker", 1)):
            assert control.wait_for(pool, size, timeout=60).outcome == "reached"
        yield Setup(env_file, settings, Where.of(settings, folder))
    finally:
        api.stop_coordinator()
        control.teardown()
        end_namespace(NAMESPACE)
        ray.shutdown()


def submit(setup: Setup, paths: list[str], partition: str, **options: object) -> str:
    request = api.plan_batch(setup.settings, setup.where, paths, partition, **options)  # type: ignore[arg-type]
    return api.submit(setup.settings, setup.where, request)


def finished(setup: Setup, batch_id: str) -> BatchProgress:
    return wait_until(
        lambda: (progress := api.get_batch(setup.where, batch_id)).finished and progress,
        BATCH_SECONDS,
        f"batch {batch_id} to finish",
    )


def states(setup: Setup, batch_id: str, folder: Path) -> dict[str, FileState]:
    return {
        Path(task.path).relative_to(folder).as_posix(): task.state
        for task in api.batch_files(setup.where, batch_id)
    }


def outputs(setup: Setup, partition: str) -> dict[str, list[dict]]:
    """Every chunks file of the partition, by source path relative to the volume."""
    root = setup.where.outputs / partition
    found = {}
    for path in root.rglob("*.chunks.jsonl"):
        relative = path.relative_to(root).as_posix().removesuffix(".chunks.jsonl")
        found[relative] = [json.loads(line) for line in path.read_text().splitlines()]
    # A pool task the killed coordinator had sent may still be writing a document its successor
    # wrote again (the same content): its temporary file goes when its rename lands.
    try:
        wait_until(lambda: not _temporaries(root), 30, "writes under way to end", every=0.05)
    except TimeoutError:
        raise AssertionError(f"temporary files left behind: {_temporaries(root)}") from None
    return found


def _temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.is_file()]


def check_written_once(records: list[dict], source: str) -> None:
    assert [r["chunk_index"] for r in records] == list(range(len(records))), source
    assert len({r["content_hash"] for r in records}) == 1


@pytest.fixture(scope="module")
def mixed(setup: Setup) -> tuple[dict[str, Expected], dict]:
    """The mixed corpus indexed once through the CLI with --wait."""
    expected = write_corpus(setup.data / "mixed")
    result = cli(setup, "index", "data/mixed", "--partition", "docs", "--metadata",
                 '{"team": "qa"}', "--wait", "--json")  # fmt: skip
    assert result.returncode == 1, result.stderr  # some files fail on purpose
    return expected, json.loads(result.stdout)  # one JSON object, nothing else


def test_every_file_reaches_its_state_and_outputs_match_the_sources(
    setup: Setup, mixed: tuple[dict[str, Expected], dict]
) -> None:
    expected, summary = mixed
    batch_id = summary["batch_id"]
    assert summary["state"] == "failed" and summary["done"] == len(expected)
    files = {Path(t.path).relative_to(setup.data / "mixed").as_posix(): t
             for t in api.batch_files(setup.where, batch_id)}  # fmt: skip
    assert {path: task.state.value for path, task in files.items()} == {
        path: outcome.state for path, outcome in expected.items()
    }
    for path, outcome in expected.items():
        if outcome.reason:
            assert outcome.reason in files[path].error, (path, files[path].error)
            assert "\n" not in files[path].error and "ray::" not in files[path].error
            assert files[path].attempts == 1  # a file's own failure is not retried
    written = outputs(setup, "docs")
    assert set(written) == {f"mixed/{p}" for p, o in expected.items() if o.state == "COMPLETED"}
    for source, records in written.items():
        check_written_once(records, source)
        outcome = expected[source.removeprefix("mixed/")]
        assert files[source.removeprefix("mixed/")].chunks == len(records)
        for page, word in outcome.page_words.items():
            holders = [r for r in records if word in r["text"]]
            assert holders and all(page in r["pages"] for r in holders), (source, page)
        assert {r["partition"] for r in records} == {"docs"}
        assert all(r["metadata"] == {"team": "qa"} for r in records)
        markdown = (setup.where.outputs / "docs" / f"{source}.md").read_text()
        assert all(word in markdown for word in outcome.page_words.values())
    assert "scriptzq" not in json.dumps(written)


def test_the_cli_lists_and_shows_batches_from_the_ledger(
    setup: Setup, mixed: tuple[dict[str, Expected], dict]
) -> None:
    expected, summary = mixed
    listed = cli(setup, "batches", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [
        b for b in json.loads(listed.stdout)["batches"] if b["batch_id"] == summary["batch_id"]
    ]
    assert row["counts"]["COMPLETED"] == sum(o.state == "COMPLETED" for o in expected.values())
    assert row["pages_per_second"] > 0 and row["eta_seconds"] == 0
    shown = cli(setup, "batches", "show", summary["batch_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)["files"]) == len(expected)


def test_resubmitting_skips_and_force_indexes_again(
    setup: Setup, mixed: tuple[dict[str, Expected], dict]
) -> None:
    expected, _ = mixed
    folder = setup.data / "mixed"
    again = finished(setup, submit(setup, [str(folder)], "docs"))
    got = states(setup, again.batch_id, folder)
    assert got == {p: FileState.SKIPPED if o.state == "COMPLETED" else FileState.FAILED
                   for p, o in expected.items()}  # fmt: skip
    forced = cli(setup, "index", "data/mixed/notes", "--partition", "docs", "--force", "--wait")
    assert forced.returncode == 0, forced.stderr
    batch_id, *progress, summary = forced.stdout.splitlines()
    assert progress[-1].startswith("  3/3 done (3 completed)") and "pages/s" in progress[-1]
    assert summary == f"batch {batch_id}: done"
    elsewhere = finished(setup, submit(setup, [str(folder / "notes")], "other"))
    assert elsewhere.counts == {"COMPLETED": 3}  # skipping is per partition


def test_paths_outside_the_data_volume_are_refused(setup: Setup, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("not shared")
    (setup.data / "escape").mkdir()
    (setup.data / "escape" / "link.txt").symlink_to(outside)
    before = api.list_batches(setup.where)
    for target in (str(outside), "data/escape"):
        result = cli(setup, "index", target, "--partition", "docs")
        assert result.returncode == 2, result.stderr
        assert "outside DATA_VOLUME" in result.stderr and len(result.stderr.splitlines()) == 1
    assert api.list_batches(setup.where) == before


def _pdf_folder(setup: Setup, name: str, count: int, pages: int) -> Path:
    """`count` PDFs, one made and the rest its copies with a comment of their own after its end
    (distinct content, none SKIPPED; making each anew costs ~0.2 s a file)."""
    folder = setup.data / name
    folder.mkdir()
    made = pdf_bytes(name, pages, filler=60)
    for n in range(count):
        (folder / f"{name}-{n}.pdf").write_bytes(made + f"%{name}-{n}\n".encode())
    return folder


def _wait_for_files_in_flight(setup: Setup, batch_id: str) -> None:
    """Until a file of the batch is being converted, chunked or written (under load a PDF's
    conversion is brief, and a poll may never see one CONVERTING); if none ever is, the failure
    says what the batch's files were doing instead."""
    running = {state.value for state in RUNNING_STATES}
    try:
        wait_until(
            lambda: running & set(api.get_batch(setup.where, batch_id).counts),
            BATCH_SECONDS,
            "a file in flight",
            every=0.05,
        )
    except TimeoutError as timeout:
        files = api.batch_files(setup.where, batch_id)
        seen = {(f.state.value, f.error) for f in files}
        raise AssertionError(f"{timeout}; the batch's files: {sorted(seen, key=str)}") from None


def _all_completed_once(setup: Setup, batch_id: str, folder: Path, partition: str) -> None:
    progress = finished(setup, batch_id)
    files = api.batch_files(setup.where, batch_id)
    assert progress.counts == {"COMPLETED": len(files)}, [(f.path, f.error) for f in files]
    written = outputs(setup, partition)
    assert set(written) == {Path(f.path).relative_to(setup.data).as_posix() for f in files}
    for source, records in written.items():
        check_written_once(records, source)


def test_small_files_sharing_a_task_each_keep_their_own_outcome(setup: Setup) -> None:
    """Small files go to the indexer pool several to a task: an empty file among them fails by
    itself, of two files with the same content (maybe in the same task) one is indexed and the
    other skipped, and every other file is indexed exactly once."""
    folder = setup.data / "grouped"
    folder.mkdir()
    empty, twins, alone = set(), [], set()
    for n in range(120):
        name = f"g{n:03}.txt"
        if n % 10 == 3:
            (folder / name).write_bytes(b"")
            empty.add(name)
        elif n % 10 == 5:  # the same text as the file before it
            (folder / name).write_text(f"grouped file {n - 1}\n")
            twins.append((f"g{n - 1:03}.txt", name))
        else:
            (folder / name).write_text(f"grouped file {n}\n")
            alone.add(name)
    alone -= {first for first, _ in twins}
    batch_id = submit(setup, [str(folder)], "grouped")
    finished(setup, batch_id)

    found = states(setup, batch_id, folder)
    assert {name for name in empty if found[name] is FileState.FAILED} == empty
    assert {name for name in alone if found[name] is FileState.COMPLETED} == alone
    for pair in twins:
        assert sorted(found[name] for name in pair) == [FileState.COMPLETED, FileState.SKIPPED]
    for task in api.batch_files(setup.where, batch_id):
        assert task.attempts == 1, (task.path, task.error)
        if task.state is FileState.FAILED:
            assert task.error == "empty file (0 bytes)", task.error
        if task.state is FileState.SKIPPED:
            assert task.error is not None and "same content" in task.error
    written = outputs(setup, "grouped")
    completed = {name for name, state in found.items() if state is FileState.COMPLETED}
    assert set(written) == {f"grouped/{name}" for name in completed}
    for source, records in written.items():
        check_written_once(records, source)


def test_a_killed_pool_actor_and_coordinator_lose_nothing(setup: Setup) -> None:
    folder = _pdf_folder(setup, "deaths", count=96, pages=12)
    batch_id = submit(setup, [str(folder)], "deaths")
    _wait_for_files_in_flight(setup, batch_id)
    (marker,) = control.state("marker").names(Phase.ALIVE)
    ray.kill(ray.get_actor(marker))
    ray.kill(ray.get_actor(COORDINATOR_NAME), no_restart=False)  # Ray restarts it: it resumes

    _all_completed_once(setup, batch_id, folder, "deaths")
    assert marker not in control.state("marker").names(Phase.ALIVE)
    attempts = [task.attempts for task in api.batch_files(setup.where, batch_id)]
    assert max(attempts) == 2  # the files in flight when the coordinator ended ran again


def test_resizing_the_pools_mid_batch_loses_nothing(setup: Setup) -> None:
    folder = _pdf_folder(setup, "resized", count=72, pages=8)
    batch_id = submit(setup, [str(folder)], "resized")
    _wait_for_files_in_flight(setup, batch_id)
    for pool, size in (("indexer", 1), ("marker", 2), ("indexer", 2), ("marker", 1)):
        control.scale(pool, size, wait=False)
    _all_completed_once(setup, batch_id, folder, "resized")
    for pool, size in (("indexer", 2), ("marker", 1)):
        assert control.wait_for(pool, size, timeout=60).outcome == "reached"


def test_killing_the_submitting_process_lets_the_batch_finish(setup: Setup) -> None:
    folder = _pdf_folder(setup, "orphan", count=24, pages=6)
    known = {b.batch_id for b in api.list_batches(setup.where)}
    submitter = subprocess.Popen(
        [sys.executable, "-m", "openrag_tui", "index", str(folder), "--partition", "orphan",
         "--wait", "--env", str(setup.env_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        env={**os.environ, "XDG_STATE_HOME": str(setup.env_file.parent)},
    )  # fmt: skip
    try:
        (batch_id,) = wait_until(
            lambda: {b.batch_id for b in api.list_batches(setup.where)} - known,
            60,
            "the submitter's batch in the ledger",
        )
    finally:
        submitter.send_signal(signal.SIGKILL)
        submitter.wait(timeout=30)
    _all_completed_once(setup, batch_id, folder, "orphan")


def test_cancel_stops_queued_files_and_retry_runs_failed_ones_again(
    setup: Setup, mixed: tuple[dict[str, Expected], dict]
) -> None:
    folder = setup.data / "cancelled"
    folder.mkdir()
    for n in range(300):
        (folder / f"c{n}.txt").write_text(f"cancel me {n}\n")
    batch_id = submit(setup, [str(folder)], "cancelled")
    cancelled = api.cancel(setup.settings, setup.where, batch_id)
    progress = finished(setup, batch_id)
    assert cancelled == progress.counts["CANCELLED"] > 0
    assert progress.counts.get("COMPLETED", 0) + cancelled == 300
    assert progress.state == "cancelled"
    assert len(outputs(setup, "cancelled")) == progress.counts.get("COMPLETED", 0)

    expected, summary = mixed
    failed = sum(o.state == "FAILED" for o in expected.values())
    retried = cli(setup, "batches", "retry", summary["batch_id"])
    assert retried.returncode == 0, retried.stderr
    assert f"{failed} failed file(s) queued again" in retried.stdout
    again = finished(setup, summary["batch_id"])
    assert again.counts["FAILED"] == failed
    tries = {t.state: t.attempts for t in api.batch_files(setup.where, summary["batch_id"])}
    assert tries[FileState.FAILED] == 2 and tries[FileState.COMPLETED] == 1  # counted, not reset


# Hostile files and names


HOSTILE = {
    "[/].txt": "slash markup",
    "[red]x[/red].txt": "red markup",
    "[link=file:/etc/passwd]a[/link].md": "a link",  # the folders `[link=file:`, `etc`, ...
    "\x1b]0;PWNED\x07.txt": "a window title",
    "\x1b[2J\x1b[41m.txt": "a screen clear",
    "n" * 246 + ".txt": "a very long name",
}


def test_hostile_names_are_indexed_and_shown_inert(setup: Setup) -> None:
    folder = setup.data / "hostile"
    folder.mkdir()
    for name, words in HOSTILE.items():  # `[/].txt` is the file `].txt` in the folder `[`
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"A file named with {words}.\n")
    result = cli(setup, "index", "data/hostile", "--partition", "hostile", "--wait")
    assert result.returncode == 0, result.stderr
    for raw in ("\x1b", "\x07"):
        assert raw not in result.stdout + result.stderr
    batch_id = result.stdout.splitlines()[0]
    shown = cli(setup, "batches", "show", batch_id)
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "\x07" not in shown.stdout
    assert "[red]" in shown.stdout and "\\x1b]0;PWNED" in shown.stdout  # shown, inert
    as_json = json.loads(cli(setup, "batches", "show", batch_id, "--json").stdout)
    names = {Path(f["path"]).relative_to(folder).as_posix() for f in as_json["files"]}
    assert names == set(HOSTILE) and {f["state"] for f in as_json["files"]} == {"COMPLETED"}
    written = outputs(setup, "hostile")
    assert len(written) == len(HOSTILE)  # the long name under a shortened one


def test_files_swapped_after_submission_fail_as_their_own_fault(
    setup: Setup, tmp_path: Path
) -> None:
    """Queued behind a busy batch, three files are swapped for a FIFO, a link to /dev/zero and a
    link outside: each fails at once with its reason (never retried, never read), the batch ends
    and a retry fails them again just as fast."""
    busy = _pdf_folder(setup, "busy", count=16, pages=8)
    folder = setup.data / "swapped"
    folder.mkdir()
    for name in ("fifo.txt", "zero.txt", "outside.txt", "kept.txt", "big.txt"):
        (folder / name).write_text(f"{name}\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    busy_id = submit(setup, [str(busy)], "busy")
    batch_id = submit(setup, [str(folder)], "swapped")
    for name in ("fifo.txt", "zero.txt", "outside.txt"):
        (folder / name).unlink()
    os.mkfifo(folder / "fifo.txt")
    (folder / "zero.txt").symlink_to("/dev/zero")
    (folder / "outside.txt").symlink_to(outside)
    with open(folder / "big.txt", "r+b") as handle:
        handle.truncate(1 << 30)  # 1 GiB, sparse
    progress = finished(setup, batch_id)
    files = {Path(t.path).name: t for t in api.batch_files(setup.where, batch_id)}
    assert progress.counts == {"COMPLETED": 1, "FAILED": 4}
    assert "not a regular file" in files["fifo.txt"].error
    for name in ("zero.txt", "outside.txt"):
        assert "symbolic link" in files[name].error or "no longer resolves" in files[name].error
    assert files["big.txt"].error == "too large (1,024 MB > 200 MB)"
    assert all(t.attempts == 1 for t in files.values())
    assert "secret" not in json.dumps(outputs(setup, "swapped"))
    retried = cli(setup, "batches", "retry", batch_id)
    assert retried.returncode == 0, retried.stderr
    assert finished(setup, batch_id).counts == {"COMPLETED": 1, "FAILED": 4}
    finished(setup, busy_id)


def test_a_link_in_the_outputs_tree_is_refused_and_nothing_written_there(
    setup: Setup, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    setup.where.outputs.mkdir(parents=True, exist_ok=True)
    (setup.where.outputs / "planted").symlink_to(elsewhere)
    folder = setup.data / "planted-src"
    folder.mkdir()
    (folder / "a.txt").write_text("hello\n")
    progress = finished(setup, submit(setup, [str(folder)], "planted"))
    (task,) = api.batch_files(setup.where, progress.batch_id)
    assert task.state is FileState.FAILED and "outside DATA_VOLUME" in task.error
    assert list(elsewhere.iterdir()) == []


def test_sigterm_to_index_wait_exits_quietly_with_143(setup: Setup) -> None:
    folder = _pdf_folder(setup, "terminated", count=8, pages=4)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "openrag_tui", "index", str(folder), "--partition", "terminated",
         "--wait", "--env", str(setup.env_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "XDG_STATE_HOME": str(setup.env_file.parent)},
    )  # fmt: skip
    try:
        first = waiting.stdout.readline()  # the batch id: it is waiting now
        assert first.strip(), waiting.stderr.read()
        waiting.send_signal(signal.SIGTERM)
        code = waiting.wait(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    err = waiting.stderr.read()
    assert code == 143, err
    assert "Traceback" not in err and "absl" not in err and "*** SIGTERM" not in err
    finished(setup, first.strip())  # the batch goes on without its submitter


def test_a_ledger_that_cannot_be_written_says_why(setup: Setup, tmp_path: Path) -> None:
    """The coordinator of another namespace on a read-only ledger folder (an immutable folder
    stands for a volume mounted read-only: root writes through plain permissions): `index`
    exits 1 with one line that says the folder is read-only, no Ray traceback, no escape."""
    volume = tmp_path / "ro"
    (volume / "docs").mkdir(parents=True)
    (volume / "docs" / "a.txt").write_text("hello\n")
    (volume / ".openrag-tui").mkdir()
    env = tmp_path / ".env"
    namespace = f"ortui-ro-{uuid.uuid4().hex[:8]}"
    env.write_text(
        setup.env_file.read_text().replace(NAMESPACE, namespace).replace("./data", str(volume))
    )
    if subprocess.run(["chattr", "+i", str(volume / ".openrag-tui")]).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "openrag_tui", "index", str(volume / "docs"),
             "--partition", "ro", "--env", str(env)],
            capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
            env={**os.environ, "XDG_STATE_HOME": str(tmp_path)},
        )  # fmt: skip
    finally:
        subprocess.run(["chattr", "-i", str(volume / ".openrag-tui")], check=True)
        end_namespace(namespace)
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "read-only" in line and "cannot open the ledger" in line, line
    assert "\x1b" not in line and "Traceback" not in line
