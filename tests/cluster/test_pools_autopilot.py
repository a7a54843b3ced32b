"""The autopilot on the real two-node cluster: a backlog grows the indexer pool to its maximum,
idle shrinks it, a hand resize holds (across the autopilot's own restart) until the backlog
changes, the budget stops growth, the .env holds each size, and no file is lost or doubled.

Named to run after test_cluster_view_live, which wants a cluster where nothing died yet (the
teardown here kills pool actors)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from openrag_tui.config import EnvFile, Settings, set_env_values
from openrag_tui.indexing import api, autopilot
from openrag_tui.indexing.autopilot_log import read_status
from openrag_tui.indexing.batch import FileState
from openrag_tui.indexing.paths import Where
from openrag_tui.pools import control
from tests.support.cli import run_cli
from tests.support.raycluster import TestCluster, wait_until

NAMESPACE = f"ortui-pilot-{uuid.uuid4().hex[:8]}"
ENV = """\
RAY_POOL_SIZE=1
RAY_NUM_GPUS=0.1
RAY_MAX_TASKS_PER_WORKER=1
MARKER_POOL_SIZE=0
DATA_VOLUME=./data
OPENRAG_TUI_NAMESPACE={namespace}
OPENRAG_TUI_SINK=files
RAY_HEAD_ADDRESS={address}
OPENRAG_TUI_AUTOPILOT=on
OPENRAG_TUI_AUTOPILOT_INDEXER_MIN=1
OPENRAG_TUI_AUTOPILOT_INDEXER_MAX=3
OPENRAG_TUI_AUTOPILOT_IDLE_SECONDS=1
"""


@pytest.fixture(scope="module")
def env_file(ray_cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("autopilot")
    (folder / "data").mkdir()
    path = folder / ".env"
    path.write_text(ENV.format(namespace=NAMESPACE, address=ray_cluster.gcs_address))
    settings = Settings.from_envfile(EnvFile.read(path))
    control.connect(settings)
    try:
        control.deploy(settings)
        assert control.wait_for("indexer", 1, timeout=60).outcome == "reached"
        yield path
    finally:
        autopilot.stop()
        api.stop_coordinator()
        control.teardown()
        ray.shutdown()


def read(path: Path) -> tuple[Settings, Where]:
    settings = Settings.from_envfile(EnvFile.read(path))
    return settings, Where.of(settings, path.parent)


def submit(path: Path, name: str, count: int) -> str:
    settings, where = read(path)
    folder = where.volume / name
    folder.mkdir()
    for i in range(count):
        (folder / f"{i:04d}.txt").write_text(f"file {i} of {name}\n" * 20)
    request = api.plan_batch(settings, where, [str(folder)], name)
    return api.submit(settings, where, request)


def target() -> int:
    return control.state("indexer").target


def env_size(path: Path) -> str:
    return EnvFile.read(path).values["RAY_POOL_SIZE"]


def completed_once(path: Path, batch_id: str, count: int) -> None:
    _, where = read(path)
    wait_until(lambda: api.get_batch(where, batch_id).finished, 120, f"batch {batch_id} done")
    files = api.batch_files(where, batch_id)
    assert [task.state for task in files] == [FileState.COMPLETED] * count
    outputs = [task.output for task in files]
    assert len(set(outputs)) == count and all(Path(out).is_file() for out in outputs)


def test_the_pool_follows_the_backlog_and_a_hand_resize_holds(env_file: Path) -> None:
    settings, where = read(env_file)
    pilot = autopilot.start(settings, env_file)

    first = submit(env_file, "first", 300)
    steps = ray.get(pilot.look.remote())
    assert [(s["pool"], s["from"], s["to"]) for s in steps] == [("indexer", 1, 3)]
    assert target() == 3 and env_size(env_file) == "3"  # the maximum, and the .env says so
    completed_once(env_file, first, 300)

    wait_until(lambda: target() == 1, 60, "the idle pool shrunk to its minimum")
    assert env_size(env_file) == "1"

    hand = run_cli("scale", "indexer", "2", "--no-wait", env_file=env_file)
    assert hand.returncode == 0, hand.stderr
    wait_until(
        lambda: "by hand" in read_status(where).pools["indexer"]["note"], 30, "the hold noted"
    )
    ray.kill(pilot, no_restart=False)  # the autopilot's own restart keeps the hold
    wait_until(lambda: ray.get(pilot.look.remote(), timeout=10) == [], 60, "the autopilot back")
    for _ in range(2):
        assert ray.get(pilot.look.remote()) == []
    assert target() == 2 and env_size(env_file) == "2"

    set_env_values(EnvFile.read(env_file), {"OPENRAG_TUI_AUTOPILOT_GPU_BUDGET": "0.25"})
    second = submit(env_file, "second", 100)  # the backlog changed: followed again
    steps = ray.get(pilot.look.remote())
    assert [s["to"] for s in steps] == [None] and "GPU budget" in steps[0]["reason"]
    assert target() == 2  # 0.25 GPU holds two actors of 0.1, not the maximum of three
    completed_once(env_file, second, 100)
    lines = [s for s in read_status(where, 100).steps if s["to"] is not None]
    assert [(s["from"], s["to"]) for s in lines][:2] == [(1, 3), (3, 1)]
