"""GPU memory per actor from NVML's per-process figures (recorded payloads + NVML builders),
its warnings, `status --json`, and the bounded history the panel keeps."""

from __future__ import annotations

from typing import Any

from openrag_tui.cluster import history as history_module
from openrag_tui.cluster.allocation import build_view
from openrag_tui.cluster.gpumemory import MEASURED, NO_GPU, UNKNOWN
from openrag_tui.cluster.history import History, Series
from openrag_tui.cluster.state import parse
from openrag_tui.cluster.summary import view_as_dict
from openrag_tui.config.pools import POOLS
from tests.support.synthetic import HEAD_ID, nvml_gpus, pool_spec_of, recorded

GPU_MIB = 40960.0


def with_nvml(processes: dict[int, list[tuple[int, float | None]]]) -> dict[str, Any]:
    """The recorded two-node cluster, its head reporting two A100s with these processes per GPU
    (the worker node reports none: declared GPUs)."""
    payloads = recorded()
    summary = payloads["nodes_summary"]["data"]["summary"]
    head = next(entry for entry in summary if entry["raylet"]["nodeId"] == HEAD_ID)
    head["gpus"] = nvml_gpus(2)
    for index, gpu in enumerate(head["gpus"]):
        gpu["processesPids"] = [
            {"pid": pid, "gpuMemoryUsage": mib} for pid, mib in processes.get(index, [])
        ]
    return payloads


def by_name(payloads: dict[str, Any]) -> dict[str, Any]:
    return {entry.name: entry for entry in view_of(payloads).gpu_memory.values()}


def view_of(payloads: dict[str, Any]):
    specs = [pool_spec_of(name, 2, 0.5) for name in POOLS]
    return build_view(parse(payloads, 0.0), specs, now=0.0, stale_after=60.0)


# idx-head-0 (pid 4654) and idx-head-1 (4655) reserve 0.5 GPU, marker-head (4722) 1 GPU and the
# trainer (4720) 1 GPU in a placement group, all on the head
TYPICAL = {0: [(4654, 12000.0), (4655, 25000.0)], 1: [(4720, 3000.0)]}


def test_each_actor_gets_its_measured_memory_and_its_share() -> None:
    found = by_name(with_nvml(TYPICAL))
    fits = found["idx-head-0"]
    assert (fits.status, fits.devices, fits.memory_mib) == (MEASURED, (0,), 12000.0)
    assert fits.share_mib == 0.5 * GPU_MIB and not fits.over_share
    assert found["idx-head-1"].over_share  # 25,000 MiB held against a 20,480 MiB share


def test_an_actor_reserving_a_gpu_on_none_is_said_and_unknown_stays_unknown() -> None:
    found = by_name(with_nvml(TYPICAL))
    assert found["marker-head"].status == NO_GPU
    worker = found["idx-worker-0"]  # its node reports no NVML data
    assert (worker.status, worker.memory_mib, worker.share_mib) == (UNKNOWN, None, None)


def test_a_process_of_no_actor_on_the_gpus_leaves_the_gpu_less_actor_unknown() -> None:
    """A marker worker's child process (or vLLM) holds memory under its own pid: it may be the
    actor's, so no 'runs on the CPU' claim is made."""
    found = by_name(with_nvml({**TYPICAL, 1: [(4720, 3000.0), (99999, 8000.0)]}))
    assert found["marker-head"].status == UNKNOWN


def test_a_memory_nvml_did_not_give_is_unknown() -> None:
    found = by_name(with_nvml({0: [(4654, None)]}))
    assert (found["idx-head-0"].status, found["idx-head-0"].memory_mib) == (UNKNOWN, None)


def test_the_warnings_name_the_actor_over_its_share_and_the_one_on_no_gpu() -> None:
    warnings = view_of(with_nvml(TYPICAL)).warnings
    over = [line for line in warnings if "more than its share" in line]
    assert over == [
        "indexer actor idx-head-1 holds 24.4 GiB of GPU memory, more than its share "
        "(0.5 × 40.0 GiB = 20.0 GiB)."
    ]
    assert any("marker-head reserves 1 GPU but its process is on no GPU" in w for w in warnings)
    assert not any("idx-head-0" in line for line in warnings)


def test_status_json_carries_the_gpu_memory_per_actor() -> None:
    shown = view_as_dict(view_of(with_nvml(TYPICAL)), "http://127.0.0.1:8265")
    rows = {row["name"]: row for row in shown["actors_gpu_memory"]}
    assert rows["idx-head-1"] == {
        "actor_id": rows["idx-head-1"]["actor_id"],
        "name": "idx-head-1",
        "pool": "indexer",
        "node_id": HEAD_ID,
        "gpus_reserved": 0.5,
        "gpu_indexes": [0],
        "memory_mib": 25000.0,
        "share_mib": 20480.0,
        "status": "measured",
        "over_share": True,
    }
    assert rows["idx-worker-0"]["memory_mib"] is None and rows["idx-worker-0"]["status"] == UNKNOWN


def test_history_keeps_the_window_only_and_summarises_an_actors_memory() -> None:
    history = History(minutes=1.0)
    view = view_of(with_nvml(TYPICAL))
    actor = next(e for e in view.gpu_memory.values() if e.name == "idx-head-1")
    for second in range(0, 300, 2):
        history.record_cluster(view, view.gpu_memory, now=float(second))
    samples = history.actors[actor.actor_id].samples
    assert len(samples) == 31 and samples[0][0] >= 298 - 60  # one minute of 2 s refreshes
    assert history.actor_memory(actor.actor_id) == (25000.0, 25000.0)
    assert history.node(HEAD_ID, "gpu_utilization")[-1] == 37.0
    history.record_cluster(view_of(recorded()), {}, now=1000.0)  # no NVML and nothing measured
    assert actor.actor_id not in history.actors  # not seen for a whole window: forgotten


def test_a_pools_memory_is_every_sample_until_there_are_too_many_then_the_latest(
    monkeypatch,
) -> None:
    """A 14,000-actor pool over 15 minutes has 6 million samples: a second of CPU a refresh."""
    history = History(minutes=15.0)
    for actor in ("a", "b", "c"):
        series = history.actors[actor] = Series.sized(history.window)
        for second in range(4):  # 100, 200, 300, 400 MiB: the latest are the largest
            series.add(float(second), 100.0 * (second + 1))
    assert history.pool_memory(["a", "b", "c", "gone"]) == (250.0, 400.0)  # all 12 samples
    monkeypatch.setattr(history_module, "POOL_SAMPLES", 6)  # 12 samples: 2 latest of each
    assert history.pool_memory(["a", "b", "c"]) == (350.0, 400.0)
    assert history.pool_memory(["a"]) == (250.0, 400.0)  # 4 samples: all of them
    assert history.pool_memory(["gone"]) is None


def test_history_turns_the_ledgers_totals_into_rates() -> None:
    history = History(minutes=15.0)
    history.record_indexing(10, 100, now=0.0)
    history.record_indexing(30, 160, now=2.0)
    history.record_indexing(5, 0, now=4.0)  # a batch removed: no negative rate
    history.record_indexing(9, 8, now=6.0)
    assert history.files_per_second.values == [10.0, 2.0]
    assert history.pages_per_second.values == [30.0, 4.0]


def test_an_actor_of_two_gpus_has_twice_its_gpus_memory_as_share() -> None:
    from openrag_tui.cluster.gpumemory import share_of

    assert share_of(2.0, 24576.0, 40000.0) == (49152.0, False)
    assert share_of(2.0, 24576.0, 50200.0) == (49152.0, True)  # over by more than 2 %
    assert share_of(0.0, 24576.0, 100.0) == (None, False)  # reserves none: no share


def test_the_backend_keeps_its_history_across_reloads_unless_the_window_changes(
    tmp_path,
) -> None:
    from openrag_tui.ui.backend import Backend
    from openrag_tui.workspace import open_workspace

    env = tmp_path / ".env"
    env.write_text("RAY_POOL_SIZE=2\n")
    backend = Backend(open_workspace(str(env)))
    backend.history.record_indexing(1, 1, now=1.0)
    kept = backend.history
    env.write_text("RAY_POOL_SIZE=3\n")
    backend.reload_workspace()
    assert backend.history is kept
    env.write_text("RAY_POOL_SIZE=3\nOPENRAG_TUI_HISTORY_MINUTES=5\n")
    backend.reload_workspace()
    assert backend.history.minutes == 5.0 and backend.history is not kept


def test_an_entrys_share_and_over_share_are_derived_from_its_figures() -> None:
    """Each entry's share and over-share are what its own figures give (they are worked out
    once per kind of actor on a node)."""
    from openrag_tui.cluster.gpumemory import share_of

    entries = view_of(with_nvml(TYPICAL)).gpu_memory.values()
    assert any(entry.over_share for entry in entries)
    assert any(entry.share_mib is None for entry in entries)
    for entry in entries:
        derived = share_of(entry.reserved, entry.gpu_memory_mib, entry.memory_mib)
        assert (entry.share_mib, entry.over_share) == derived
