"""Parsing dashboard payloads into ClusterState: the recorded cluster, and variants of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from openrag_tui.cluster.allocation import build_view
from openrag_tui.cluster.dashboard import UNDECODED
from openrag_tui.cluster.state import (
    Actor,
    ClusterState,
    GpuDevice,
    GpuProcess,
    UnreadableBody,
    normalise_required,
    parse,
)
from tests.support.synthetic import (
    HEAD_ID,
    PG_ID,
    WORKER_ID,
    actor_named,
    generate_payloads,
    node_row,
    nvml_gpus,
    recorded,
    rows,
    set_rows,
)

DATA = Path(__file__).resolve().parents[1] / "data"
REQUIRED_ONLY = ("version", "nodes_detail", "actors_detail")


@pytest.fixture
def state() -> ClusterState:
    return parse(recorded(), fetched_at=1000.0)


def test_recorded_nodes_head_first_with_declared_totals(state: ClusterState) -> None:
    head, worker = state.nodes
    assert (head.node_id, worker.node_id) == (HEAD_ID, WORKER_ID)
    assert head.is_head and not worker.is_head
    assert (head.gpus, worker.gpus) == (4.0, 2.0)
    assert head.resources_total["CPU"] == 2.0
    assert (head.ip, head.hostname, head.state) == ("192.0.2.2", "vm", "ALIVE")
    assert head.gpu_devices == ()  # the GPUs are only declared
    assert (head.gpus_reserved_reported, worker.gpus_reserved_reported) == (3.0, 1.5)
    assert (head.label, worker.label) == ("192.0.2.2 head", "192.0.2.2 worker")


def test_recorded_actors(state: ClusterState) -> None:
    by_name = {actor.name: actor for actor in state.actors}
    assert len(state.actors) == 8 and state.actors_total == 8 and not state.actors_truncated
    marker = by_name["marker-head"]
    assert (marker.class_name, marker.state, marker.node_id) == ("MarkerWorker", "ALIVE", HEAD_ID)
    assert (marker.pid, marker.num_restarts, marker.namespace) == (4722, 0, "scenario")
    assert marker.is_detached and marker.death_cause is None and marker.gpus == 1.0
    waiting = by_name["marker-waiting"]
    assert waiting.is_pending and waiting.node_id is None and waiting.pid == 0
    assert waiting.required == {"GPU": 2.0}


def test_placement_group_actor_request_is_normalised(state: ClusterState) -> None:
    trainer = next(actor for actor in state.actors if actor.name == "trainer-pg")
    assert trainer.placement_group_id == PG_ID
    assert trainer.required == {"GPU": 1.0}  # bundle_group_* is a marker, not a resource


def test_recorded_placement_group_demand_and_events(state: ClusterState) -> None:
    (group,) = state.placement_groups
    assert (group.pg_id, group.name, group.state) == (PG_ID, "scenario-pg", "CREATED")
    (bundle,) = group.bundles
    assert (bundle.node_id, bundle.index, bundle.gpus) == (HEAD_ID, 0, 1.0)
    assert bundle.resources == {"CPU": 0.01, "GPU": 1.0}
    assert state.demand == (({"GPU": 2.0}, 1), ({"GPU": 8.0}, 1))
    (message,) = state.autoscaler_messages
    assert "{'GPU': 8.0}" in message
    assert (state.ray_version, state.fetched_at) == ("2.60.0", 1000.0)


def test_normalise_counts_any_bundle_form_once() -> None:
    raw = {
        f"GPU_group_{PG_ID}": 0.5,
        f"GPU_group_0_{PG_ID}": 0.5,
        f"CPU_group_{PG_ID}": 1.0,
        f"CPU_group_0_{PG_ID}": 1.0,
        f"bundle_group_{PG_ID}": 0.001,
        f"bundle_group_0_{PG_ID}": 0.001,
        "memory": 1024.0,
    }
    assert normalise_required(raw) == {"GPU": 0.5, "CPU": 1.0, "memory": 1024.0}
    assert normalise_required({"GPU": 0.3, "worker_tag": 0.5}) == {"GPU": 0.3, "worker_tag": 0.5}


def test_restarts_are_a_string_and_death_cause_is_text() -> None:
    payloads = recorded()
    row = actor_named(payloads, "idx-worker-0")
    row.update(
        state="DEAD",
        num_restarts="3",
        death_cause={
            "actor_died_error_context": {
                "error_message": "The actor is dead because it was killed by `ray.kill`.",
                "reason": "RAY_KILL",
            }
        },
    )
    actor = next(a for a in parse(payloads, 0.0).actors if a.name == "idx-worker-0")
    assert actor.num_restarts == 3
    assert actor.death_cause == "The actor is dead because it was killed by `ray.kill`."


def test_truncated_actor_list() -> None:
    payloads = recorded()
    result = payloads["actors_detail"]["data"]["result"]
    result["total"] = 20
    state = parse(payloads, 0.0)
    assert (state.actors_total, len(state.actors), state.actors_truncated) == (20, 8, True)


def test_dead_node_state() -> None:
    payloads = recorded()
    node_row(payloads, WORKER_ID).update(state="DEAD", state_message="Expected termination")
    worker = parse(payloads, 0.0).nodes[1]
    assert (worker.node_id, worker.state, worker.is_alive) == (WORKER_ID, "DEAD", False)


def test_workers_are_ordered_by_address_ipv4_then_ipv6_then_text() -> None:
    """After the head: IPv4 by number (not as text: 10.0.0.9 before 10.0.0.10), IPv6 next, then
    what is no address (a leading zero, a scope), by its text."""
    payloads = recorded()
    worker = node_row(payloads, WORKER_ID)
    addresses = ["10.0.0.10", "fe80::1%eth0", "::1", "010.0.0.1", "10.0.0.9", "gpu-a", "1.2.3.4"]
    workers = []
    for number, address in enumerate(addresses):
        workers.append({**worker, "node_id": f"{number:056x}", "node_ip": address})
    set_rows(payloads, "nodes_detail", [node_row(payloads, HEAD_ID), *workers])
    order = [node.ip for node in parse(payloads, 0.0).nodes[1:]]
    expected = ["1.2.3.4", "10.0.0.9", "10.0.0.10", "::1", "fe80::1%eth0", "010.0.0.1", "gpu-a"]
    assert order == expected


def test_physical_gpus_from_nvml() -> None:
    payloads = recorded()
    summary = payloads["nodes_summary"]["data"]["summary"]
    head_entry = next(entry for entry in summary if entry["raylet"]["nodeId"] == HEAD_ID)
    head_entry["gpus"] = nvml_gpus(2, used_mib=10240.0, utilization=37.0)
    head_entry["gpus"][1]["utilizationGpu"] = None  # NVML may not say
    head = parse(payloads, 0.0).nodes[0]
    first, second = head.gpu_devices
    assert first == GpuDevice(
        index=0,
        name="NVIDIA A100-SXM4-40GB",
        memory_used_mib=10240.0,
        memory_total_mib=40960.0,
        utilization=37.0,
        uuid=first.uuid,
        processes=(GpuProcess(pid=4655, memory_mib=10240.0),),
    )
    assert first.uuid.startswith("GPU-")
    assert (second.index, second.utilization) == (1, None)


@pytest.mark.parametrize("sent", [False, True], ids=["decoded", "as-sent"])
def test_a_gpu_with_null_or_missing_figures_is_read_field_by_field(sent: bool) -> None:
    """Complete GPUs are read straight into GpuDevice; one null or missing figure anywhere sends
    the whole summary through the field-by-field reading, with its defaults: the position for
    no index, "" and 0 for null text and memory, and processes without a pid above 0 dropped."""
    payloads = recorded()
    summary = payloads["nodes_summary"]["data"]["summary"]
    head_entry = next(entry for entry in summary if entry["raylet"]["nodeId"] == HEAD_ID)
    head_entry["gpus"] = nvml_gpus(2)
    odd = head_entry["gpus"][1]
    del odd["index"]
    odd.update(name=None, memoryUsed=None, uuid=None)
    odd["processesPids"] = [
        {"pid": 0, "gpuMemoryUsage": 1.0},
        {"pid": None, "gpuMemoryUsage": 2.0},
        {"pid": -7, "gpuMemoryUsage": 3.0},
        {"pid": "4700"},
    ]
    if sent:
        payloads["nodes_summary"] = json.dumps(payloads["nodes_summary"]).encode()
    state = parse(payloads, 0.0)
    first, second = state.nodes[0].gpu_devices
    assert state.unread == ()
    assert (first.index, first.memory_used_mib, first.processes) == (
        0,
        10240.0,
        (GpuProcess(4655, 10240.0),),
    )
    assert (second.index, second.name, second.memory_used_mib, second.uuid) == (1, "", 0.0, "")
    assert second.processes == (GpuProcess(-7, 3.0), GpuProcess(4700, None))


def test_only_required_payloads_degrade_gracefully() -> None:
    payloads = {name: body for name, body in recorded().items() if name in REQUIRED_ONLY}
    state = parse(payloads, 0.0)
    head = state.nodes[0]
    assert head.hostname == "192.0.2.2"  # node_name when /nodes?view=summary is missing
    assert head.gpu_devices == () and head.gpus_reserved_reported is None
    assert state.placement_groups == () and state.demand == () and state.autoscaler_messages == ()
    assert len(state.actors) == 8


@pytest.mark.parametrize("missing", REQUIRED_ONLY)
def test_a_missing_required_payload_is_named(missing: str) -> None:
    payloads = recorded()
    del payloads[missing]
    with pytest.raises(ValueError, match=missing):
        parse(payloads, 0.0)


def test_autoscaler_messages_keep_only_the_autoscaler_oldest_first() -> None:
    payloads = recorded()
    events = rows(payloads, "cluster_events")
    newer = dict(events[0], time="2026-11-27 09:30:00", message="Resized to 3 nodes.")
    other = dict(events[0], source_type="GCS", message="Node died.")
    events[:] = [newer, other, *events]
    assert parse(payloads, 0.0).autoscaler_messages == (events[2]["message"], "Resized to 3 nodes.")


def test_older_reference_actor_payload_keeps_custom_resources() -> None:
    payloads = recorded()
    payloads["actors_detail"] = json.loads((DATA / "api_v0_actors_detail.json").read_text())
    state = parse(payloads, 0.0)
    tagged = next(actor for actor in state.actors if actor.name == "w_tagged")
    assert tagged.required == {"GPU": 0.3, "worker_tag": 0.5}


def test_generated_payloads_parse() -> None:
    state = parse(generate_payloads(10, 20), fetched_at=0.0)
    assert len(state.nodes) == 10 and state.nodes[0].is_head
    assert state.nodes[0].hostname == "gpu-0000" and len(state.nodes[0].gpu_devices) == 8
    assert len(state.actors) == 10 * 20 + 1 + 2  # per node, one placement-group actor, 2 pending
    assert sum(actor.is_pending for actor in state.actors) == 2
    assert len(state.placement_groups) == 1
    trainer = next(actor for actor in state.actors if actor.class_name == "Trainer")
    assert trainer.required == {"GPU": 1.0}


@pytest.mark.parametrize("sent", [False, True], ids=["decoded", "as-sent"])
def test_actors_asking_the_same_share_one_request(sent: bool) -> None:
    """The allocation counts a node's actors by kind (class, request): with a dict each, a
    1,000-node refresh had 20,000 kinds. As sent, a request is read once per JSON text."""
    payloads = generate_payloads(3, 12)
    if sent:
        payloads["actors_detail"] = json.dumps(payloads["actors_detail"]).encode()
    state = parse(payloads, fetched_at=0.0)
    by_request: dict[tuple, set[int]] = {}
    for actor in state.actors:
        by_request.setdefault(tuple(sorted(actor.required.items())), set()).add(id(actor.required))
    assert len(by_request) < len(state.actors) / 4
    assert all(len(ids) == 1 for ids in by_request.values())


def test_parsed_objects_are_what_their_constructors_build() -> None:
    """`parse` builds nodes without `__init__` (`built`), and gives each actor its pool and
    owner: each equals a constructed copy, derived fields included (an actor constructed
    without its pool and owner gets them from its class)."""
    state = parse(generate_payloads(3, 12), 0.0)
    for node in state.nodes:
        constructed = replace(node)
        assert constructed == node and vars(constructed) == vars(node)
    for actor in state.actors:
        given = msgspec.structs.asdict(actor)
        assert Actor(**{**given, "pool": None, "owner": None}) == actor
    assert {actor.pool for actor in state.actors} == {"indexer", "marker", None}
    assert {actor.owner for actor in state.actors} == {"openrag", None}


def _odd_bodies() -> dict:
    """A recorded cluster whose big bodies msgspec cannot read (a lone surrogate, NaN)."""
    payloads = recorded()
    rows(payloads, "actors_detail")[0]["name"] = "half \ud800 a pair"
    rows(payloads, "actors_detail")[1]["required_resources"] = {"CPU": float("nan")}
    head = payloads["nodes_summary"]["data"]["summary"][0]
    head["gpus"] = nvml_gpus(2)
    head["gpus"][0]["name"] = "half \udc00 a pair"
    head["gpus"][1]["utilizationGpu"] = float("nan")
    return payloads


@pytest.mark.parametrize(
    "payloads",
    [recorded(), generate_payloads(3, 12), _odd_bodies()],
    ids=["recorded", "generated", "odd"],
)
def test_the_bodies_as_sent_parse_as_their_decoded_form(payloads: dict) -> None:
    """The dashboard client hands the actors' and the nodes' summary bodies over undecoded:
    the same actors, nodes and GPUs come of them."""
    as_sent = {name: json.dumps(payloads[name]).encode() for name in UNDECODED}
    from_bytes, from_values = parse({**payloads, **as_sent}, 0.0), parse(payloads, 0.0)
    assert repr(from_bytes) == repr(from_values)  # repr: NaN is not equal to itself
    assert len(from_bytes.actors) == len(rows(payloads, "actors_detail"))
    summary = payloads["nodes_summary"]["data"]["summary"]
    devices = sum(len(node.gpu_devices) for node in from_bytes.nodes)
    assert devices == sum(len(entry.get("gpus") or ()) for entry in summary)


def _summary_with_gpus(change: Callable[[dict], None]) -> dict:
    """The recorded nodes' summary, its first node with two GPUs, then changed."""
    summary = recorded()["nodes_summary"]
    first = summary["data"]["summary"][0]
    first["gpus"] = nvml_gpus(2)
    change(first)
    return summary


@pytest.mark.parametrize(
    ("summary", "said"),
    [
        (b"<html>502 Bad Gateway</html>", "The nodes' summary is not JSON: "),
        (b"[1, 2]", "The nodes' summary is not of the shape Ray sends (Expected `object | null`"),
        (
            _summary_with_gpus(lambda head: head["gpus"][1].update(name=123)),
            "not of the shape Ray sends (Expected `str | null`, got `int` - at "
            "`$.data.summary[0].gpus[1].name`): ",
        ),
        (
            _summary_with_gpus(lambda head: head.update(cmdline=[[[[[[]]]]]], now=None)),
            None,  # a field the view does not read may be anything
        ),
        (
            json.dumps(_summary_with_gpus(lambda head: head.update(cmdline="X"))).encode()[:-1]
            + b","
            + b'"deep": '
            + b"[" * 5000
            + b"]" * 5000
            + b"}",
            "The nodes' summary nests too deep: ",
        ),
    ],
    ids=["not json", "a list", "a wrong type", "odd unread field", "too deep"],
)
def test_a_nodes_summary_that_cannot_be_read_is_left_out_and_said(summary, said) -> None:
    """The summary is optional: one that cannot be read leaves the nodes without GPUs (with
    their names from `nodes_detail`) and says so in a warning; the refresh goes on."""
    payloads = {**recorded(), "nodes_summary": summary}
    state = parse(payloads, 0.0)
    names = {row["node_id"]: row["node_name"] for row in rows(payloads, "nodes_detail")}
    if said is None:
        assert state.unread == () and any(node.gpu_devices for node in state.nodes)
        return
    assert {node.node_id: node.hostname for node in state.nodes} == names
    assert set(names.values()) != {"vm"}  # the summary's hostname
    assert all(node.gpu_devices == () for node in state.nodes)
    (sentence,) = state.unread
    assert said in sentence and sentence.endswith("are not shown (/nodes?view=summary).")
    view = build_view(state, [], now=0.0, stale_after=60.0)
    assert sentence in view.warnings


def test_an_actors_listing_that_is_not_json_says_so() -> None:
    payloads = {**recorded(), "actors_detail": b"<html>502 Bad Gateway</html>"}
    with pytest.raises(UnreadableBody, match="the actors' listing is not JSON"):
        parse(payloads, 0.0)


@pytest.mark.parametrize("request_text", ["[1, 2]", '"GPU"', '{"GPU": true}'])
def test_a_request_of_the_wrong_shape_as_sent_is_named(request_text: str) -> None:
    """A request is read from its JSON text apart from the body: a wrong one still fails the
    parse (the refresh says "unexpected shape"), naming the field."""
    payloads = recorded()
    rows(payloads, "actors_detail")[0]["required_resources"] = "REQUEST"
    text = json.dumps(payloads["actors_detail"]).replace('"REQUEST"', request_text)
    payloads["actors_detail"] = text.encode()
    with pytest.raises(ValueError, match="required_resources"):
        parse(payloads, fetched_at=0.0)


def test_a_request_that_is_not_utf8_says_the_listing_is_not_json() -> None:
    """Decoding the body skips over a request without checking its text: a byte that is not
    UTF-8 in it is found when the request is read, and said as before."""
    payloads = recorded()
    rows(payloads, "actors_detail")[0]["required_resources"] = {"GPU_KEY": 1.0}
    payloads["actors_detail"] = (
        json.dumps(payloads["actors_detail"]).encode().replace(b"GPU_KEY", b"G\xffU")
    )
    with pytest.raises(UnreadableBody, match="the actors' listing is not JSON"):
        parse(payloads, 0.0)


def test_a_node_address_sent_as_a_number_sorts_as_ipv4() -> None:
    payloads = recorded()
    node_row(payloads, WORKER_ID)["node_ip"] = 3232235778  # 192.168.0.2
    assert [node.node_id for node in parse(payloads, 0.0).nodes] == [HEAD_ID, WORKER_ID]


@pytest.mark.parametrize("sent", [False, True], ids=["decoded", "as-sent"])
def test_a_gpu_memory_of_minus_zero_reads_zero(sent: bool) -> None:
    payloads = recorded()
    summary = payloads["nodes_summary"]["data"]["summary"]
    head_entry = next(entry for entry in summary if entry["raylet"]["nodeId"] == HEAD_ID)
    head_entry["gpus"] = nvml_gpus(1, used_mib=-0.0)
    if sent:
        payloads["nodes_summary"] = json.dumps(payloads["nodes_summary"]).encode()
    (gpu,) = parse(payloads, 0.0).nodes[0].gpu_devices
    assert json.dumps(gpu.memory_used_mib) == "0.0"


def test_a_lone_surrogate_for_a_gpu_number_leaves_the_summary_out() -> None:
    """The summary is optional: a figure msgspec cannot read as a number is said, not fatal."""
    payloads = recorded()
    summary = payloads["nodes_summary"]["data"]["summary"]
    head_entry = next(entry for entry in summary if entry["raylet"]["nodeId"] == HEAD_ID)
    head_entry["gpus"] = nvml_gpus(1)
    head_entry["gpus"][0]["index"] = "\ud800"
    payloads["nodes_summary"] = json.dumps(payloads["nodes_summary"]).encode()
    state = parse(payloads, 0.0)
    assert state.nodes[0].gpu_devices == ()
    assert state.unread and "not of the shape Ray sends" in state.unread[0]
