"""Batches into a running OpenRAG (its API stand-in, `tests/support/openrag_server.py`) through
our coordinator on the real two-node cluster: back-pressure (never more active tasks than the
capacity), every file uploaded once with the bearer token on every request, OpenRAG's states
and failures recorded, faults waited out, the batch paused on a refused token, and a killed
coordinator or a restarted OpenRAG costing nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
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
from openrag_tui.indexing.openrag.client import file_id_of
from openrag_tui.indexing.paths import Where
from openrag_tui.pools import control
from tests.support.cli import run_cli
from tests.support.openrag_server import OpenRagStandIn, running_openrag
from tests.support.raycluster import TestCluster, wait_until

TOKEN = "s3cret-token-value"
BATCH_SECONDS = 120


@dataclass(frozen=True)
class Setup:
    env_file: Path
    settings: Settings
    where: Where
    openrag: OpenRagStandIn
    dashboard: str

    @property
    def data(self) -> Path:
        return self.where.volume


@pytest.fixture(scope="module")
def cluster(ray_cluster: TestCluster) -> Iterator[TestCluster]:
    namespace = f"ortui-or-{uuid.uuid4().hex[:8]}"
    os.environ["ORTUI_TEST_NAMESPACE"] = namespace
    yield ray_cluster
    api.stop_coordinator()
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] == namespace:
            ray.kill(ray.get_actor(entry["name"], namespace=namespace), no_restart=True)
    ray.shutdown()
    os.environ.pop("ORTUI_TEST_NAMESPACE", None)


@pytest.fixture
def setup(cluster: TestCluster, tmp_path: Path) -> Iterator[Setup]:
    """A fresh OpenRAG stand-in (4 slots, 0.2 s tasks, bearer auth) and a .env pointing at it;
    the module's coordinator (one namespace) serves every test."""
    with running_openrag(total_slots=4, task_seconds=0.2, token=TOKEN) as openrag:
        (tmp_path / "data").mkdir()
        env_file = tmp_path / ".env"
        env_file.write_text(
            f"DATA_VOLUME=./data\nOPENRAG_TUI_TARGET=openrag\n"
            f"OPENRAG_TUI_OPENRAG_URL={openrag.url}\nAUTH_TOKEN={TOKEN}\n"
            "RAY_POOL_SIZE=1\nRAY_MAX_TASKS_PER_WORKER=3\n"
            f"OPENRAG_TUI_NAMESPACE={os.environ['ORTUI_TEST_NAMESPACE']}\n"
            f"RAY_HEAD_ADDRESS={cluster.gcs_address}\n"
        )
        settings = Settings.from_envfile(EnvFile.read(env_file))
        control.connect(settings)
        api.stop_coordinator()  # one ledger per coordinator: this test's
        where = Where.of(settings, tmp_path)
        yield Setup(env_file, settings, where, openrag, cluster.dashboard_url)
        api.stop_coordinator()


def cli(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env_file=setup.env_file, cwd=setup.env_file.parent, timeout=180)


def files(folder: Path, count: int, name: str = "doc") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"{name}{n}.txt"
        path.write_text(f"document {name} {n}\n")
        paths.append(path)
    return paths


def submit(setup: Setup, folder: Path, partition: str, force: bool = False) -> str:
    request = api.plan_batch(setup.settings, setup.where, [str(folder)], partition, force=force,
                             env_file=str(setup.env_file))  # fmt: skip
    assert request.config.target == "openrag"
    return api.submit(setup.settings, setup.where, request)


def finished(setup: Setup, batch_id: str, timeout: float = BATCH_SECONDS) -> BatchProgress:
    return wait_until(
        lambda: (progress := api.get_batch(setup.where, batch_id)).finished and progress,
        timeout, f"batch {batch_id} to finish",
    )  # fmt: skip


def uploads(setup: Setup, partition: str) -> dict[str, int]:
    return {fid: n for (part, fid), n in setup.openrag.record.uploads.items() if part == partition}


def test_a_folder_goes_in_within_capacity_once_each_with_the_token(setup: Setup) -> None:
    paths = files(setup.data / "kb" / "sub", 20)
    result = cli(setup, "index", "data/kb", "--partition", "kb", "--wait", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["target"] == "openrag" and summary["counts"]["COMPLETED"] == 20
    record = setup.openrag.record
    assert record.max_active <= setup.openrag.total_slots  # back-pressure held
    assert uploads(setup, "kb") == {file_id_of(f"kb/sub/{p.name}"): 1 for p in paths}
    assert set(record.authorizations) == {f"Bearer {TOKEN}"}  # on every request
    first = record.metadata[("kb", "kb%2Fsub%2Fdoc0.txt")]
    assert first["source"] == str(paths[0]) and "/" not in first["file_id"]
    assert control.status() == {"indexer": None, "marker": None}  # no pools of ours for it
    shown = json.loads(cli(setup, "batches", "--json").stdout)["batches"][0]
    assert shown["target"] == "openrag" and shown["state"] == "done"
    table = cli(setup, "batches").stdout
    assert "openrag" in table
    assert TOKEN not in json.dumps(summary) + table + cli(setup, "env", "show").stdout


def test_states_failures_refusals_and_a_second_batch_of_the_same_files(setup: Setup) -> None:
    folder = setup.data / "mixed"
    files(folder, 3)
    (folder / "broken.txt").write_text("a file OpenRAG fails on\n")
    (folder / "unsupported.xyz").write_text("a type OpenRAG refuses\n")
    first = finished(setup, submit(setup, folder, "mixed"))
    assert first.counts == {"COMPLETED": 3, "FAILED": 2}
    by_name = {Path(t.path).name: t for t in api.batch_files(setup.where, first.batch_id)}
    broken = by_name["broken.txt"]
    assert (
        broken.error
        == "ValueError: cannot parse 'mixed%2Fbroken.txt': no text layer and OCR is disabled"
    )
    assert broken.openrag_state == "FAILED" and broken.task_id
    assert by_name["unsupported.xyz"].error.startswith("OpenRAG refused it (HTTP 415): Unsupported")
    assert by_name["doc0.txt"].openrag_state == "COMPLETED"
    setup.openrag.faults.fail_names = ()
    (folder / "doc0.txt").write_text("changed: a new version\n")
    again = finished(setup, submit(setup, folder, "mixed"))
    skipped = [
        t for t in api.batch_files(setup.where, again.batch_id) if t.state is FileState.SKIPPED
    ]
    # doc1, doc2: same content we sent already; doc0 changed: OpenRAG has its id (409)
    assert {Path(t.path).name for t in skipped} == {"doc0.txt", "doc1.txt", "doc2.txt"}
    said = {Path(t.path).name: t.error for t in skipped}
    assert said["doc0.txt"] == "OpenRAG: File 'mixed%2Fdoc0.txt' already exists in partition mixed"
    forced = finished(setup, submit(setup, folder, "mixed", force=True))
    assert forced.counts["COMPLETED"] == 4  # PUT replaced the three, posted broken.txt
    assert ("PUT", "/indexer/partition/mixed/file/mixed%2Fdoc0.txt") in setup.openrag.record.methods
    assert uploads(setup, "mixed")["mixed%2Fdoc0.txt"] == 2


def test_an_outage_is_waited_out_without_using_attempts(setup: Setup) -> None:
    paths = files(setup.data / "outage", 12)
    setup.openrag.faults.unavailable = 25  # a burst of 503s on every route
    progress = finished(setup, submit(setup, setup.data / "outage", "outage"))
    assert progress.counts == {"COMPLETED": 12}
    assert {t.attempts for t in api.batch_files(setup.where, progress.batch_id)} == {1}
    assert sorted(uploads(setup, "outage").values()) == [1] * len(paths)


def test_a_refused_token_pauses_the_batch_until_it_is_fixed(setup: Setup) -> None:
    files(setup.data / "auth", 6)
    setup.openrag.token = "another-token"  # OpenRAG's token changed under us
    batch_id = submit(setup, setup.data / "auth", "auth")
    paused = wait_until(lambda: (b := api.get_batch(setup.where, batch_id)).paused and b, 60,
                        "the batch to pause")  # fmt: skip
    assert paused.state == "paused" and "AUTH_TOKEN" in paused.paused
    assert "another-token" not in paused.paused and TOKEN not in paused.paused
    assert {t.attempts for t in api.batch_files(setup.where, batch_id)} == {0}
    shown = cli(setup, "batches", "show", batch_id).stdout
    assert "paused: " in shown and "AUTH_TOKEN" in shown
    setup.env_file.write_text(setup.env_file.read_text().replace(TOKEN, "another-token"))
    resumed = cli(setup, "batches", "resume")
    assert resumed.returncode == 0 and "1 paused batch(es) go on" in resumed.stdout
    assert finished(setup, batch_id).counts == {"COMPLETED": 6}


def test_a_killed_coordinator_and_a_restarted_openrag_lose_and_double_nothing(
    setup: Setup,
) -> None:
    setup.openrag.task_seconds = 1.0
    paths = files(setup.data / "restart", 16)
    batch_id = submit(setup, setup.data / "restart", "restart")
    wait_until(lambda: api.get_batch(setup.where, batch_id).counts.get("SUBMITTED", 0)
               + api.get_batch(setup.where, batch_id).counts.get("SERIALIZING", 0), 60,
               "files inside OpenRAG")  # fmt: skip
    ray.kill(ray.get_actor(COORDINATOR_NAME), no_restart=False)  # Ray restarts it
    wait_until(lambda: api.get_batch(setup.where, batch_id).counts.get("COMPLETED"), 60,
               "a file completed after the restart")  # fmt: skip
    in_flight = {t.task_id for t in api.batch_files(setup.where, batch_id) if t.task_id
                 and not t.state.final}  # fmt: skip
    setup.openrag.restart()  # every task forgotten: the files in flight must go in again
    progress = finished(setup, batch_id)
    assert progress.counts == {"COMPLETED": 16}
    counts = uploads(setup, "restart")
    assert set(counts) == {file_id_of(f"restart/{p.name}") for p in paths}
    assert sum(counts.values()) <= 16 + len(in_flight)  # lost tasks sent again, once
    assert setup.openrag.record.max_active <= setup.openrag.total_slots


def test_a_task_forgotten_after_completion_is_completed_by_asking_for_the_file(
    setup: Setup,
) -> None:
    setup.openrag.faults.forget_after_completion = True
    paths = files(setup.data / "late", 6)
    progress = finished(setup, submit(setup, setup.data / "late", "late"))
    assert progress.counts == {"COMPLETED": 6}
    assert sorted(uploads(setup, "late").values()) == [1] * len(paths)
    asked = [m for m in setup.openrag.record.methods if m[1].startswith("/partition/late/file/")]
    assert asked  # the 404 was answered by asking OpenRAG for the file


def test_without_the_admin_role_the_env_bounds_the_files_in_flight(setup: Setup) -> None:
    setup.openrag.faults.admin = False
    setup.openrag.total_slots = 8  # more than the .env's RAY_POOL_SIZE × RAY_MAX_TASKS (3)
    files(setup.data / "nonadmin", 12)
    progress = finished(setup, submit(setup, setup.data / "nonadmin", "nonadmin"))
    assert progress.counts == {"COMPLETED": 12}
    assert setup.openrag.record.max_active <= 3
    status = cli(setup, "status", "--json", "--dashboard", setup.dashboard)
    assert status.returncode == 0, status.stderr
    queue = json.loads(status.stdout)["openrag"]
    assert queue["reachable"] and queue["forbidden"] and queue["queue"] is None
    assert (queue["limit"], queue["limit_source"], queue["in_flight"]) == (3, ".env", 0)
    assert "403" in queue["error"]


def test_status_shows_openrags_queue(setup: Setup) -> None:
    setup.openrag.task_seconds = 30.0
    files(setup.data / "busy", 3)
    batch_id = submit(setup, setup.data / "busy", "busy")
    wait_until(lambda: api.get_batch(setup.where, batch_id).in_flight == 3, 60, "3 in flight")
    status = cli(setup, "status", "--json", "--dashboard", setup.dashboard)
    queue = json.loads(status.stdout)["openrag"]
    assert queue["queue"]["total_slots"] == 4 and queue["queue"]["active"] == 3
    assert (queue["in_flight"], queue["limit_source"]) == (3, "queue/info")
    text = cli(setup, "status", "--dashboard", setup.dashboard).stdout
    assert "4 slots, 3 active" in text and "ours 3/4 in flight" in text
    api.cancel(setup.settings, setup.where, batch_id)


def test_cancel_asks_openrag_to_stop_the_files_in_flight(setup: Setup) -> None:
    setup.openrag.task_seconds = 30.0
    files(setup.data / "cancel", 8)
    batch_id = submit(setup, setup.data / "cancel", "cancel")
    wait_until(lambda: api.get_batch(setup.where, batch_id).in_flight >= 4, 60, "4 in flight")
    result = cli(setup, "batches", "cancel", batch_id)
    assert result.returncode == 0, result.stderr
    progress = finished(setup, batch_id, timeout=60)
    assert progress.counts == {"CANCELLED": 8}
    deletes = [m for m in setup.openrag.record.methods if m[0] == "DELETE"]
    assert len(deletes) == 4  # the four inside OpenRAG; the queued four never left


def test_a_batch_is_refused_before_queueing_when_openrag_does_not_answer_or_refuses(
    setup: Setup,
) -> None:
    files(setup.data / "pre", 2)
    env = setup.env_file.read_text()
    setup.env_file.write_text(env.replace(TOKEN, "wrong"))
    refused = cli(setup, "index", "data/pre", "--partition", "pre")
    assert refused.returncode == 2 and "AUTH_TOKEN" in refused.stderr
    assert "wrong" not in refused.stderr
    setup.env_file.write_text(env.replace(setup.openrag.url, "http://127.0.0.1:9"))
    down = cli(setup, "index", "data/pre", "--partition", "pre")
    assert down.returncode == 3 and "OPENRAG_TUI_OPENRAG_URL" in down.stderr
    said = down.stderr.strip().splitlines()
    assert said[0].endswith("taken from the working folder (" + str(setup.env_file.parent) + ")")
    assert len(said) == 2  # the note on the path, and the one sentence why
    assert api.list_batches(setup.where) == []  # nothing queued
