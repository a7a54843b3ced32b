"""Allocation figures, every one asserted exactly against the recorded scenario and variants.

The scenario (tests/support/scenario.py): head 4 GPU holds IndexerWorkerActor 0.5 + 0.5,
MarkerWorker 1.0 and a placement-group bundle of 1 GPU (a Trainer runs inside); worker 2 GPU holds
IndexerWorkerActor 0.5 and MarkerWorker 1.0. MarkerWorker 2.0 waits, Worker 8.0 is infeasible.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openrag_tui.cluster.allocation import (
    ClusterView,
    build_view,
    pack_gpus,
    scale_preview,
)
from openrag_tui.cluster.state import Actor, parse
from openrag_tui.config import Settings
from openrag_tui.config.pools import pool_of_class, pool_specs
from tests.support.synthetic import (
    HEAD_ID,
    PG_ID,
    WORKER_ID,
    actor,
    actor_named,
    generate_payloads,
    node_row,
    pool_spec_of,
    recorded,
    rows,
    set_rows,
)

DATA = Path(__file__).resolve().parents[1] / "data"
INDEXER = pool_spec_of("indexer", 4, 0.5, 0.0, {"max_tasks_per_worker": 5})
MARKER = pool_spec_of("marker", 3, 1.0, 0.0, {"max_processes": 2})
FETCHED_AT = 1000.0


def view_of(
    payloads: dict[str, Any],
    pools: tuple = (INDEXER, MARKER),
    now: float = FETCHED_AT,
) -> ClusterView:
    return build_view(parse(payloads, FETCHED_AT), pools, now=now, stale_after=6.0)


def pending_named(view: ClusterView, name: str):
    return next(pending for pending in view.pending if pending.actor.name == name)


@pytest.fixture(scope="module")
def view() -> ClusterView:
    return view_of(recorded())


# The recorded scenario


def test_head_node_figures(view: ClusterView) -> None:
    head = view.nodes[0]
    assert head.node.node_id == HEAD_ID
    assert (head.gpus_total, head.gpus_reserved, head.gpus_free) == (4.0, 3.0, 1.0)
    assert head.reserved_by == {"indexer": 1.0, "marker": 1.0, "other": 1.0}
    assert head.placement_groups_gpus == 1.0  # the bundle, once: the Trainer inside adds nothing
    assert head.other_by_class == {}
    assert head.gpu_slots == (1.0, 1.0, 1.0, 0.0)  # whole ones, then 0.5 + 0.5 on one GPU
    assert sorted(a.name for a in head.actors) == [
        "idx-head-0",
        "idx-head-1",
        "marker-head",
        "trainer-pg",
    ]
    assert head.resources_free["CPU"] == 1.99  # the bundle holds 0.01 CPU


def test_worker_node_figures(view: ClusterView) -> None:
    worker = view.nodes[1]
    assert worker.node.node_id == WORKER_ID
    assert (worker.gpus_total, worker.gpus_reserved, worker.gpus_free) == (2.0, 1.5, 0.5)
    assert worker.reserved_by == {"indexer": 0.5, "marker": 1.0, "other": 0.0}
    assert (worker.placement_groups_gpus, worker.gpu_slots) == (0.0, (1.0, 0.5))


def test_node_reservations_match_rays_own_usage_by_node(view: ClusterView) -> None:
    status = recorded()["cluster_status"]["data"]["clusterStatus"]["loadMetricsReport"]
    for node in view.nodes:
        used, total = status["usageByNode"][node.node.node_id]["GPU"]
        assert (node.gpus_reserved, node.gpus_total) == (used, total)


def test_pool_figures(view: ClusterView) -> None:
    indexer, marker = view.pools
    assert (indexer.name, indexer.target, indexer.alive, indexer.pending) == ("indexer", 4, 3, 0)
    assert (indexer.gpus_per_actor, indexer.gpus_reserved, indexer.gpus_target) == (0.5, 1.5, 2.0)
    assert (indexer.fits_more, indexer.fits_on_idle) == (3, 12)  # head 2 + worker 1; 8 + 4
    assert indexer.concurrency == {"max_tasks_per_worker": 5}
    assert (marker.target, marker.alive, marker.pending, marker.restarting, marker.dead) == (
        3,
        2,
        1,
        0,
        0,
    )
    assert (marker.gpus_reserved, marker.gpus_target) == (2.0, 3.0)
    assert (marker.fits_more, marker.fits_on_idle) == (1, 6)  # one whole GPU free, on the head


def test_pool_fitting_counts_cpu_too() -> None:
    one_cpu = (
        pool_spec_of("indexer", 4, 0.5, 1.0, {}),
        pool_spec_of("marker", 3, 1.0, 1.0, {}),
    )
    indexer, marker = view_of(recorded(), one_cpu).pools
    # head: 1.99 CPU free -> 1; worker: GPU 0.5 free -> 1. Idle: 2 CPUs per node.
    assert (indexer.fits_more, indexer.fits_on_idle) == (2, 4)
    assert (marker.fits_more, marker.fits_on_idle) == (1, 4)


def test_pending_waiting_and_infeasible(view: ClusterView) -> None:
    too_big, waiting = view.pending  # infeasible first
    assert (too_big.actor.name, too_big.reason, too_big.pool) == ("too-big", "infeasible", None)
    assert too_big.detail == "needs 8 GPU; the largest node has 4"
    assert (
        too_big.autoscaler_message
        == recorded()["cluster_events"]["data"]["result"]["result"][0]["message"]
    )
    assert "{'GPU': 8.0}" in too_big.autoscaler_message
    assert (waiting.actor.name, waiting.reason, waiting.pool) == (
        "marker-waiting",
        "waiting",
        "marker",
    )
    assert waiting.required == {"GPU": 2.0}
    assert waiting.detail == "needs 2 GPU; most free on one node is 1 whole GPU (192.0.2.2 head)"
    assert waiting.autoscaler_message is None


def test_no_warnings_on_fresh_recorded_data(view: ClusterView) -> None:
    assert view.warnings == ()


# Names and targets


@pytest.mark.parametrize(
    ("class_name", "pool"),
    [
        ("DocSerializer", "indexer"),
        ("IndexerWorkerActor", "indexer"),
        ("TuiIndexerWorker", "indexer"),
        ("MarkerWorker", "marker"),
        ("TuiMarkerWorker", "marker"),
        ("Trainer", None),
        ("IndexerPool", None),
    ],
)
def test_pool_of(class_name: str, pool: str | None) -> None:
    an_actor = Actor("a", class_name, "", "ALIVE", None, "", {}, None, 0, 0, None)
    assert an_actor.pool == pool
    owner = None if pool is None else ("openrag-tui" if class_name.startswith("Tui") else "openrag")
    assert an_actor.owner == owner
    assert (pool_of_class(class_name) or (None,))[0] == pool


def test_pool_targets_from_settings() -> None:
    settings = Settings(
        ray_pool_size=4,
        ray_num_gpus=0.5,
        ray_max_tasks_per_worker=50,
        marker_pool_size=3,
        marker_num_gpus=1.0,
        marker_max_processes=5,
        marker_min_processes=1,
        marker_max_tasks_per_child=10,
        pool_num_cpus=0.25,
    )
    indexer, marker = pool_specs(settings)
    assert indexer == pool_spec_of("indexer", 4, 0.5, 0.25, {"max_tasks_per_worker": 50})
    assert marker == pool_spec_of(
        "marker",
        3,
        1.0,
        0.25,
        {"max_processes": 5, "min_processes": 1, "max_tasks_per_child": 10},
    )
    assert indexer.request == {"GPU": 0.5, "CPU": 0.25}


# Packing GPU slots (an estimate)


def test_packing_whole_first_then_fractions_first_fit_decreasing() -> None:
    assert pack_gpus(4, [0.5, 1.0, 0.5, 1.0]) == (1.0, 1.0, 1.0, 0.0)
    assert pack_gpus(2, [0.3, 0.7, 0.6, 0.4]) == (1.0, 1.0)
    assert pack_gpus(4, [2.0, 0.25]) == (1.0, 1.0, 0.25, 0.0)
    assert pack_gpus(1.5, [0.5, 0.5]) == (1.0, 0.0)  # a declared half GPU is its own instance
    assert pack_gpus(0, [0.5]) == ()


def test_fractions_add_up_exactly() -> None:
    assert pack_gpus(1, [0.1] * 10) == (1.0,)


@given(st.lists(st.integers(min_value=1, max_value=30_000), max_size=12))
def test_packing_never_loses_a_reservation(requests_units: list[int]) -> None:
    requests = [units / 10_000 for units in requests_units]
    slots = pack_gpus(4, requests)
    assert len(slots) == 4
    assert round(sum(slots), 4) == round(sum(requests), 4)


# Variants of the recorded payloads


def test_dead_node_reserves_nothing_and_warns() -> None:
    payloads = recorded()
    node_row(payloads, WORKER_ID)["state"] = "DEAD"
    for name in ("idx-worker-0", "marker-worker"):
        actor_named(payloads, name)["state"] = "RESTARTING"
    view = view_of(payloads)
    worker = view.nodes[1]
    assert (worker.node.state, worker.gpus_total, worker.gpus_reserved, worker.gpus_free) == (
        "DEAD",
        2.0,
        0.0,
        0.0,
    )
    assert worker.reserved_by == {"indexer": 0.0, "marker": 0.0, "other": 0.0}
    assert (worker.actors, worker.gpu_slots) == ((), ())
    indexer, marker = view.pools
    assert (indexer.alive, indexer.restarting, indexer.gpus_reserved) == (2, 1, 1.0)
    assert (marker.alive, marker.restarting, marker.gpus_reserved) == (1, 1, 1.0)
    assert (indexer.fits_more, indexer.fits_on_idle) == (2, 8)  # the head alone
    assert (marker.fits_more, marker.fits_on_idle) == (1, 4)
    assert view.warnings == ("Node 192.0.2.2 worker (03cb5125) is DEAD.",)


def test_restarting_actor_reserves_nothing() -> None:
    payloads = recorded()
    actor_named(payloads, "marker-worker")["state"] = "RESTARTING"
    worker = view_of(payloads).nodes[1]
    assert (worker.gpus_reserved, worker.reserved_by["marker"]) == (0.5, 0.0)


def test_stale_data_warns_with_its_age() -> None:
    view = view_of(recorded(), now=FETCHED_AT + 30)
    assert view.warnings == ("Cluster data is 30 s old; it may be out of date.",)


def test_truncated_actor_list_warns() -> None:
    payloads = recorded()
    payloads["actors_detail"]["data"]["result"]["total"] = 20
    assert view_of(payloads).warnings == (
        "Showing 8 of 20 actors: the figures count only the actors shown.",
    )


def test_pool_target_that_cannot_fit_even_idle_warns() -> None:
    big = pool_spec_of("marker", 8, 1.0, 0.0, {})
    view = view_of(recorded(), (INDEXER, big))
    assert view.warnings == (
        "The marker pool wants 8 actors of 1 GPU, but the alive nodes could hold only 6 "
        "even when idle.",
    )


def test_pool_actors_started_with_other_settings_warn() -> None:
    """OpenRAG's own pool actors reserve what their .env said when they started."""
    guide = pool_spec_of("indexer", 1, 0.1, 0.0, {})
    view = view_of(recorded(), (guide, MARKER))
    assert view.warnings == (
        "Some indexer actors reserve 0.5 GPU each, not the 0.1 the .env says: they were started "
        "with other settings.",
    )


def test_without_placement_groups_payload_the_actor_inside_counts() -> None:
    payloads = recorded()
    for name in ("placement_groups", "nodes_summary", "cluster_status", "cluster_events"):
        del payloads[name]
    view = view_of(payloads)
    head = view.nodes[0]
    assert (head.gpus_reserved, head.reserved_by["other"]) == (3.0, 1.0)
    assert (head.other_by_class, head.placement_groups_gpus) == ({"Trainer": 1.0}, 0.0)
    assert pending_named(view, "too-big").autoscaler_message is None
    assert pending_named(view, "too-big").reason == "infeasible"


def test_both_bundle_forms_count_once() -> None:
    payloads = recorded()
    trainer = actor_named(payloads, "trainer-pg")
    trainer["required_resources"][f"GPU_group_0_{PG_ID}"] = 1.0
    head = view_of(payloads).nodes[0]
    assert (head.gpus_reserved, head.placement_groups_gpus) == (3.0, 1.0)


def test_missing_custom_resource_is_infeasible() -> None:
    payloads = recorded()
    rows(payloads, "actors_detail").append(
        actor("tagged", "Worker", {"GPU": 0.5, "worker_tag": 0.5}, state="PENDING_CREATION")
    )
    tagged = pending_named(view_of(payloads), "tagged")
    assert (tagged.reason, tagged.detail) == (
        "infeasible",
        "needs 0.5 worker_tag; no node has worker_tag",
    )


def test_cpu_short_is_waiting() -> None:
    payloads = recorded()
    rows(payloads, "actors_detail").extend(
        [
            actor("cpu-hog", "Worker", {"CPU": 2.0}, node_id=WORKER_ID),
            actor("cpu-wait", "Worker", {"CPU": 2.0, "GPU": 0.1}, state="PENDING_CREATION"),
        ]
    )
    view = view_of(payloads)
    waiting = pending_named(view, "cpu-wait")
    assert (waiting.reason, waiting.detail) == (
        "waiting",
        "needs 2 CPU; most free on one node is 1.99 (192.0.2.2 head)",
    )
    assert view.nodes[1].other_by_class == {}  # a CPU-only actor reserves no GPU
    assert view.nodes[1].resources_free["CPU"] == 0.0


def test_fraction_that_fits_in_total_but_on_no_single_gpu_waits() -> None:
    payloads = recorded()
    set_rows(payloads, "nodes_detail", [node_row(payloads, WORKER_ID)])  # one node, 2 GPU
    set_rows(
        payloads,
        "actors_detail",
        [
            actor("w0", "Worker", {"GPU": 0.6}, node_id=WORKER_ID),
            actor("w1", "Worker", {"GPU": 0.6}, node_id=WORKER_ID),
            actor("w2", "Worker", {"GPU": 0.6}, state="PENDING_CREATION"),
            actor("w3", "Worker", {"GPU": 0.6}, state="PENDING_CREATION"),
        ],
    )
    set_rows(payloads, "placement_groups", [])
    view = view_of(payloads, (pool_spec_of("indexer", 4, 0.6, 0.0, {}),))
    (worker,) = view.nodes
    assert (worker.gpus_reserved, worker.gpus_free, worker.gpu_slots) == (1.2, 0.8, (0.6, 0.6))
    assert worker.other_by_class == {"Worker": 1.2}
    assert [(p.actor.name, p.reason) for p in view.pending] == [
        ("w2", "waiting"),
        ("w3", "waiting"),
    ]
    assert view.pending[0].detail == (
        "needs 0.6 GPU on one GPU; most free on one GPU is 0.4 (192.0.2.2 worker)"
    )
    (pool,) = view.pools
    assert (pool.fits_more, pool.fits_on_idle) == (0, 2)


def test_waiting_on_a_custom_resource_in_the_older_reference_payload() -> None:
    payloads = recorded()
    payloads["actors_detail"] = json.loads((DATA / "api_v0_actors_detail.json").read_text())
    summary = json.loads((DATA / "nodes_view_summary.json").read_text())["data"]["summary"]
    tags = {"workerTag": "worker_tag", "objectStoreMemory": "object_store_memory"}
    set_rows(
        payloads,
        "nodes_detail",
        [
            {
                "node_id": entry["raylet"]["nodeId"],
                "node_ip": entry["ip"],
                "node_name": entry["ip"],
                "is_head_node": entry["raylet"]["isHeadNode"],
                "state": entry["raylet"]["state"],
                "resources_total": {
                    tags.get(key, key): value
                    for key, value in entry["raylet"]["resourcesTotal"].items()
                },
            }
            for entry in summary
        ],
    )
    set_rows(payloads, "placement_groups", [])
    view = view_of(payloads)
    head, worker = view.nodes
    assert (head.gpus_reserved, head.gpu_slots) == (2.25, (1.0, 1.0, 0.25, 0.0))
    assert (worker.gpus_reserved, worker.resources_free["worker_tag"]) == (0.3, 0.5)
    big = pending_named(view, "pending_big")
    assert (big.reason, big.detail) == (
        "waiting",
        "needs 2 GPU; most free on one node is 1 whole GPU (192.0.2.2 worker)",
    )
    assert pending_named(view, "infeasible").reason == "infeasible"


def test_actor_in_a_pending_placement_group() -> None:
    payloads = recorded()
    group = rows(payloads, "placement_groups")[0]
    big = json.loads(json.dumps(group))
    big.update(placement_group_id="ab" * 18, name="big", state="PENDING")
    big["bundles"][0].update(node_id=None, unit_resources={"GPU": 8.0})
    rows(payloads, "placement_groups").append(big)
    rows(payloads, "actors_detail").extend(
        [
            actor(
                "in-big",
                "Trainer",
                {"GPU": 1.0},
                state="PENDING_CREATION",
                placement_group_id="ab" * 18,
            ),
            actor(
                "in-small",
                "Trainer",
                {"GPU": 1.0},
                state="PENDING_CREATION",
                placement_group_id=PG_ID,
            ),
        ]
    )
    view = view_of(payloads)
    in_big, in_small = pending_named(view, "in-big"), pending_named(view, "in-small")
    assert (in_big.reason, in_big.detail) == (
        "infeasible",
        "its placement group 'big' cannot be placed: a bundle needs 8 GPU; the largest node has 4",
    )
    assert (in_small.reason, in_small.detail) == (
        "waiting",
        "waits for room in its placement group 'scenario-pg'",
    )
    assert view.nodes[0].gpus_reserved == 3.0  # a pending group's unplaced bundle holds nothing


def test_dependencies_unready_waits() -> None:
    payloads = recorded()
    rows(payloads, "actors_detail").append(
        actor("deps", "MarkerWorker", {"GPU": 0.5}, state="DEPENDENCIES_UNREADY")
    )
    deps = pending_named(view_of(payloads), "deps")
    assert (deps.reason, deps.pool) == ("waiting", "marker")
    assert deps.detail == "waits for its dependencies (arguments or runtime env)"


def test_a_pending_actor_that_fits_now_says_so() -> None:
    payloads = recorded()
    rows(payloads, "actors_detail").append(
        actor("soon", "Worker", {"GPU": 0.5}, state="PENDING_CREATION")
    )
    soon = pending_named(view_of(payloads), "soon")
    assert soon.detail == "fits on 192.0.2.2 head now; Ray has not placed it yet"


# Generated clusters


def test_generated_cluster_matches_rays_usage_by_node() -> None:
    payloads = generate_payloads(10, 20)
    view = view_of(payloads)
    usage = payloads["cluster_status"]["data"]["clusterStatus"]["loadMetricsReport"]["usageByNode"]
    for node in view.nodes:
        assert node.gpus_reserved == usage[node.node.node_id]["GPU"][0]
        assert round(node.gpus_total - node.gpus_reserved, 4) == node.gpus_free
        assert max(node.gpu_slots) <= 1.0  # the estimate found room for every request
    reasons = {p.actor.name: p.reason for p in view.pending}
    assert reasons == {"too-big": "infeasible", "marker-wait": "waiting"}
    assert pending_named(view, "too-big").autoscaler_message is not None


def _ours(payloads: dict[str, Any], openrag_class: str, our_class: str) -> dict[str, Any]:
    """The recorded payloads with OpenRAG's actors of one class turned into ours."""
    for row in rows(payloads, "actors_detail"):
        if row["class_name"] == openrag_class:
            row["class_name"] = our_class
    return payloads


@pytest.mark.parametrize(
    ("size", "running", "pending", "retiring"),
    [(0, 0, 0, 3), (2, 2, 0, 1), (3, 3, 0, 0), (5, 5, 0, 0), (6, 6, 0, 0), (8, 6, 2, 0)],
)
def test_scale_preview(size: int, running: int, pending: int, retiring: int):
    """The recorded indexer pool as ours: 3 alive, room for 3 more of 0.5 GPU."""
    view = view_of(_ours(recorded(), "IndexerWorkerActor", "TuiIndexerWorker"))
    indexer = next(pool for pool in view.pools if pool.name == "indexer")
    assert (indexer.ours.alive, indexer.fits_more) == (3, 3)
    preview = scale_preview(indexer, size)
    assert (preview.running, preview.pending, preview.retiring) == (running, pending, retiring)


def test_openrags_own_actors_are_counted_apart_and_never_planned_from(view: ClusterView):
    """OpenRAG's 3 indexers hold GPUs and fill the pool's totals, but a resize of ours starts
    from none of ours: nothing of theirs retires."""
    indexer = next(pool for pool in view.pools if pool.name == "indexer")
    assert (indexer.alive, indexer.ours.alive, indexer.openrags.alive) == (3, 0, 3)
    assert indexer.openrags.gpus_reserved == 1.5 and indexer.gpus_reserved == 1.5
    preview = scale_preview(indexer, 2)
    assert (preview.running, preview.pending, preview.retiring) == (2, 0, 0)
