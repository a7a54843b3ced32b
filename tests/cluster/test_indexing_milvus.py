"""Indexing into the vector index on the real two-node cluster and a real Milvus Lite server:
one row per chunk, documents replaced as a whole (again, forced, changed, forgotten), a killed
indexer actor costing nothing, and an outage of the store waited out without using attempts.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray

from openrag_tui.cluster import vectordb
from openrag_tui.config import EnvFile, Settings
from openrag_tui.indexing import api
from openrag_tui.indexing.batch import BatchProgress, FileState
from openrag_tui.indexing.milvus import Store
from openrag_tui.indexing.paths import Where
from openrag_tui.pools import control
from openrag_tui.pools.roster import Phase
from tests.support.cli import run_cli
from tests.support.corpus import RARE, write_corpus
from tests.support.documents import pdf_bytes
from tests.support.raycluster import TestCluster, free_port, wait_until

NAMESPACE = f"ortui-mv-{uuid.uuid4().hex[:8]}"
COLLECTION = f"c_{uuid.uuid4().hex[:8]}"
ENV = """\
RAY_POOL_SIZE=2
RAY_NUM_GPUS=0.1
RAY_MAX_TASKS_PER_WORKER=3
MARKER_POOL_SIZE=1
MARKER_NUM_GPUS=0.1
DATA_VOLUME=./data
OPENRAG_TUI_CHUNK_SIZE=200
OPENRAG_TUI_CHUNK_OVERLAP=20
OPENRAG_TUI_NAMESPACE={namespace}
OPENRAG_TUI_COLLECTION={collection}
VDB_HOST=127.0.0.1
VDB_PORT={port}
RAY_HEAD_ADDRESS={address}
"""
BATCH_SECONDS = 120


@dataclass(frozen=True)
class Setup:
    env_file: Path
    settings: Settings
    where: Where
    store: Store

    @property
    def data(self) -> Path:
        return self.where.volume


def cli(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env_file=setup.env_file, cwd=setup.env_file.parent, timeout=180)


def _deploy(cluster: TestCluster, folder: Path, port: int, namespace: str) -> Setup:
    (folder / "data").mkdir(exist_ok=True)
    env_file = folder / ".env"
    env_file.write_text(
        ENV.format(namespace=namespace, collection=COLLECTION, port=port,
                   address=cluster.gcs_address)
    )  # fmt: skip
    settings = Settings.from_envfile(EnvFile.read(env_file))
    control.connect(settings)
    control.deploy(settings)
    for pool, size in (("indexer", 2), ("marker", 1)):
        assert control.wait_for(pool, size, timeout=60).outcome == "reached"
    where = Where.of(settings, folder)
    return Setup(env_file, settings, where, Store(settings.vdb_uri, COLLECTION))


def _end(namespace: str) -> None:
    api.stop_coordinator()
    control.teardown()
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == namespace:
            ray.kill(ray.get_actor(entry["name"], namespace=namespace), no_restart=True)
    ray.shutdown()


@pytest.fixture(scope="module")
def setup(ray_cluster: TestCluster, milvus, tmp_path_factory) -> Iterator[Setup]:
    deployed = _deploy(ray_cluster, tmp_path_factory.mktemp("milvus"), milvus.port, NAMESPACE)
    try:
        yield deployed
    finally:
        _end(NAMESPACE)


def finished(setup: Setup, batch_id: str) -> BatchProgress:
    return wait_until(
        lambda: (progress := api.get_batch(setup.where, batch_id)).finished and progress,
        BATCH_SECONDS,
        f"batch {batch_id} to finish",
    )


def submit(setup: Setup, folder: Path, partition: str, force: bool = False) -> str:
    request = api.plan_batch(setup.settings, setup.where, [str(folder)], partition, force=force,
                             env_file=str(setup.env_file))  # fmt: skip
    return api.submit(setup.settings, setup.where, request)


def rows_by_document(setup: Setup, partition: str, batch_id: str) -> dict[str, list[int]]:
    """For every file of the batch: the chunk indexes of its rows in Milvus."""
    found = {}
    for task in api.batch_files(setup.where, batch_id):
        relative = Path(task.path).relative_to(setup.data).as_posix()
        rows = setup.store.rows_of(partition, relative)
        found[relative] = sorted(row["chunk_index"] for row in rows)
    return found


def exact(setup: Setup, partition: str, batch_id: str) -> None:
    """Each completed file has exactly one row per chunk, numbered 0..n-1: no duplicate, no
    stale row."""
    rows = rows_by_document(setup, partition, batch_id)
    for task in api.batch_files(setup.where, batch_id):
        relative = Path(task.path).relative_to(setup.data).as_posix()
        if task.state is FileState.COMPLETED:
            assert rows[relative] == list(range(task.chunks or 0)), relative
            assert task.chunks and task.chunks > 0


def test_a_corpus_lands_in_the_index_one_row_per_chunk_and_is_found(setup: Setup) -> None:
    write_corpus(setup.data / "kb")
    result = cli(setup, "index", "data/kb", "--partition", "kb", "--wait", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["counts"]["COMPLETED"] == summary["total"] == 6
    exact(setup, "kb", summary["batch_id"])
    for name, word in RARE.items():
        found = cli(setup, "search", word, "--partition", "kb", "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["results"][0]["file_id"] == f"kb/{name}"
    status = json.loads(
        cli(setup, "status", "--json", "--dashboard", "http://127.0.0.1:9").stdout or "{}"
    )
    assert status == {}  # the dashboard is not there: exit 3 and nothing on stdout


def test_again_skips_force_rewrites_a_change_replaces_and_forget_removes(setup: Setup) -> None:
    folder = setup.data / "life"
    folder.mkdir()
    long = " ".join(f"word{n}" for n in range(200))
    (folder / "doc.txt").write_text(long)
    (folder / "other.md").write_text("# other\n\nnothing to see")
    first = finished(setup, submit(setup, folder, "life"))
    assert first.counts == {"COMPLETED": 2}
    before = setup.store.rows_of("life", "life/doc.txt")
    assert len(before) > 3
    again = finished(setup, submit(setup, folder, "life"))
    assert again.counts == {"SKIPPED": 2}  # a skipped file writes nothing
    assert setup.store.rows_of("life", "life/doc.txt") == before
    forced = finished(setup, submit(setup, folder, "life", force=True))
    assert forced.counts == {"COMPLETED": 2}
    exact(setup, "life", forced.batch_id)
    assert {r["id"] for r in setup.store.rows_of("life", "life/doc.txt")} == {
        r["id"] for r in before
    }
    (folder / "doc.txt").write_text("now short")  # changed: fewer chunks than before
    changed = finished(setup, submit(setup, folder, "life"))
    assert changed.counts == {"COMPLETED": 1, "SKIPPED": 1}
    rows = setup.store.rows_of("life", "life/doc.txt")
    assert [r["chunk_index"] for r in rows] == [0]  # the old tail is gone
    forgot = cli(setup, "forget", "data/life/doc.txt", "--partition", "life")
    assert forgot.returncode == 0, forgot.stderr
    assert "1 chunks removed" in forgot.stdout
    assert setup.store.rows_of("life", "life/doc.txt") == []
    assert setup.store.rows_of("life", "life/other.md") != []
    later = finished(setup, submit(setup, folder, "life"))
    assert later.counts == {"COMPLETED": 1, "SKIPPED": 1}  # forgotten: indexed, not skipped
    assert [r["chunk_index"] for r in setup.store.rows_of("life", "life/doc.txt")] == [0]


def test_a_killed_indexer_actor_mid_batch_leaves_exact_rows(setup: Setup) -> None:
    folder = setup.data / "killed"
    folder.mkdir()
    for n in range(40):
        (folder / f"k{n}.pdf").write_bytes(pdf_bytes(f"killed-{n}", 6, filler=60))
    batch_id = submit(setup, folder, "killed")
    wait_until(lambda: api.get_batch(setup.where, batch_id).counts.get("COMPLETED"), 60,
               "a file completed")  # fmt: skip
    victim = control.state("indexer").names(Phase.ALIVE)[0]
    ray.kill(ray.get_actor(victim))
    progress = finished(setup, batch_id)
    assert progress.counts == {"COMPLETED": 40}
    exact(setup, "killed", batch_id)


def test_an_outage_of_the_store_is_waited_out_without_using_attempts(
    ray_cluster: TestCluster, setup: Setup, tmp_path: Path
) -> None:
    """A store of its own: stopped mid-batch, the files in flight go back to the queue (no
    attempt used, the reason said), and the batch finishes once the store is back."""
    folder = Path(tempfile.mkdtemp(prefix="ortui-outage-", dir="/tmp"))
    server = vectordb.Embedded("127.0.0.1", free_port(), folder / "data", folder / "s.json",
                               folder / "s.log")  # fmt: skip
    vectordb.start(server, lambda _line: None)
    api.stop_coordinator()
    namespace = f"ortui-out-{uuid.uuid4().hex[:8]}"
    ray.shutdown()
    outage = _deploy(ray_cluster, tmp_path, server.port, namespace)
    try:
        source = outage.data / "many"
        source.mkdir()
        for n in range(60):
            (source / f"m{n}.txt").write_text(f"document number {n} " * 30)
        batch_id = submit(outage, source, "many")
        wait_until(lambda: api.get_batch(outage.where, batch_id).counts.get("COMPLETED"), 60,
                   "a file completed")  # fmt: skip
        vectordb.stop(server)
        waiting = wait_until(
            lambda: [t for t in api.batch_files(outage.where, batch_id)
                     if t.state is FileState.QUEUED and (t.error or "").startswith("waiting:")],
            60, "files waiting for the store",
        )  # fmt: skip
        assert "does not answer" in waiting[0].error
        vectordb.start(server, lambda _line: None)
        progress = wait_until(
            lambda: (p := api.get_batch(outage.where, batch_id)).finished and p, 180, "the batch"
        )
        assert progress.counts == {"COMPLETED": 60}
        files = api.batch_files(outage.where, batch_id)
        assert {task.attempts for task in files} == {1}  # the outage used no attempt
        exact(outage, "many", batch_id)
    finally:
        _end(namespace)
        vectordb.stop(server)
        control.connect(setup.settings)  # the module's other tests go on in their namespace
