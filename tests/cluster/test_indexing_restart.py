"""A batch survives the whole cluster stopping mid-way: the ledger on the data volume keeps every
file's state, and the coordinator of the next cluster resumes the batch where it stopped.

This module starts two clusters of its own, one after the other, beside the shared one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ray

from openrag_tui.config import EnvFile, Settings
from openrag_tui.indexing import api
from openrag_tui.indexing.paths import Where
from openrag_tui.pools import control
from tests.support.raycluster import TestCluster, running_cluster, wait_until

FILES = 2000  # enough that the cluster stops mid-batch: a batch of small files goes at ~200/s
ENV = """\
RAY_POOL_SIZE=2
RAY_NUM_GPUS=0.1
RAY_MAX_TASKS_PER_WORKER=4
MARKER_POOL_SIZE=0
DATA_VOLUME=./data
OPENRAG_TUI_NAMESPACE=ortui-ix-restart
OPENRAG_TUI_SINK=files
RAY_HEAD_ADDRESS={address}
"""


def joined(cluster: TestCluster, folder: Path) -> Settings:
    env = folder / ".env"
    env.write_text(ENV.format(address=cluster.gcs_address))
    settings = Settings.from_envfile(EnvFile.read(env))
    control.connect(settings)
    return settings


def test_a_batch_stopped_with_the_cluster_resumes_on_the_next_one(tmp_path: Path) -> None:
    ray.shutdown()  # a driver of the shared cluster, if a module before left one
    source = tmp_path / "data" / "notes"
    source.mkdir(parents=True)
    for n in range(FILES):
        (source / f"note-{n}.txt").write_text(f"note number {n} with word restartzq{n}\n")

    with running_cluster((1,)) as first:
        settings = joined(first, tmp_path)
        where = Where.of(settings, tmp_path)
        request = api.plan_batch(settings, where, [str(source)], "notes")
        batch_id = api.submit(settings, where, request)  # deploys the pools and the coordinator
        wait_until(
            lambda: api.get_batch(where, batch_id).counts.get("COMPLETED", 0) >= 5,
            60,
            "the first files indexed",
        )
        ray.shutdown()
    stopped = api.get_batch(where, batch_id)
    assert not stopped.finished, stopped.counts

    with running_cluster((1,)) as second:
        settings = joined(second, tmp_path)
        env = tmp_path / ".env"
        try:
            resumed = subprocess.run(
                [sys.executable, "-m", "openrag_tui", "batches", "resume", "--env", str(env)],
                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                env={**os.environ, "XDG_STATE_HOME": str(tmp_path)},
            )  # fmt: skip
            assert resumed.returncode == 0, resumed.stderr
            left = stopped.total - stopped.done
            assert f"{left} unfinished file(s) in 1 batch(es)" in resumed.stdout
            progress = wait_until(
                lambda: (p := api.get_batch(where, batch_id)).finished and p, 180, "the batch"
            )
        finally:
            api.stop_coordinator()
            control.teardown()
            ray.shutdown()
    assert progress.counts == {"COMPLETED": FILES}
    root = where.outputs / "notes" / "notes"
    written = sorted(root.glob("*.chunks.jsonl"))
    assert len(written) == FILES == len(list(root.glob("*.md")))
    for path in written:
        (record,) = [json.loads(line) for line in path.read_text().splitlines()]
        n = path.name.removeprefix("note-").removesuffix(".txt.chunks.jsonl")
        assert f"restartzq{n}" in record["text"]
    # A write cut by the cluster's end may leave its hidden temporary file, never a half document:
    # every visible output parsed above is whole.
    assert all(p.name.startswith(".") for p in root.iterdir() if p not in set(written)
               and not p.name.endswith(".md"))  # fmt: skip
