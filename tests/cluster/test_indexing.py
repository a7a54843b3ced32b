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
from openrag_tui.indexing.batch import BatchProgress, FileState
from openrag_tui.indexing.coordinator import COORDINATOR_NAME
from openrag_tui.indexing.paths import Where
from openrag_tui.pools import control
from openrag_tui.pools.roster import Phase
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
    return subprocess.run(
        [sys.executable, "-m", "openrag_tui", *args, "--env", str(setup.env_file)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=setup.env_file.parent,
        env={**os.environ, "XDG_STATE_HOME": str(setup.env_file.parent)},
    )


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
    assert not [p for p in root.rglob(".*") if p.is_file()], "temporary files left behind"
    return found


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
    folder = setup.data / name
    folder.mkdir()
    for n in range(count):
        (folder / f"{name}-{n}.pdf").write_bytes(pdf_bytes(f"{name}-{n}", pages, filler=60))
    return folder


def _all_completed_once(setup: Setup, batch_id: str, folder: Path, partition: str) -> None:
    progress = finished(setup, batch_id)
    files = api.batch_files(setup.where, batch_id)
    assert progress.counts == {"COMPLETED": len(files)}, [(f.path, f.error) for f in files]
    written = outputs(setup, partition)
    assert set(written) == {Path(f.path).relative_to(setup.data).as_posix() for f in files}
    for source, records in written.items():
        check_written_once(records, source)


def test_a_killed_pool_actor_and_coordinator_lose_nothing(setup: Setup) -> None:
    folder = _pdf_folder(setup, "deaths", count=32, pages=12)
    batch_id = submit(setup, [str(folder)], "deaths")
    wait_until(
        lambda: api.get_batch(setup.where, batch_id).counts.get("CONVERTING"),
        30,
        "a file being converted",
    )
    (marker,) = control.state("marker").names(Phase.ALIVE)
    ray.kill(ray.get_actor(marker))
    ray.kill(ray.get_actor(COORDINATOR_NAME), no_restart=False)  # Ray restarts it: it resumes

    _all_completed_once(setup, batch_id, folder, "deaths")
    assert marker not in control.state("marker").names(Phase.ALIVE)
    attempts = [task.attempts for task in api.batch_files(setup.where, batch_id)]
    assert max(attempts) == 2  # the files in flight when the coordinator ended ran again


def test_resizing_the_pools_mid_batch_loses_nothing(setup: Setup) -> None:
    folder = _pdf_folder(setup, "resized", count=24, pages=8)
    batch_id = submit(setup, [str(folder)], "resized")
    wait_until(
        lambda: api.get_batch(setup.where, batch_id).counts.get("CONVERTING"),
        30,
        "a file being converted",
    )
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
    assert {t.attempts for t in api.batch_files(setup.where, summary["batch_id"])} == {1}
