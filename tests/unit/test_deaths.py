"""Pool actors that died, with Ray's cause: in the warnings and in `status --json`, and (with the
refresh before) only those that died since."""

from __future__ import annotations

from openrag_tui.cluster.allocation import build_view
from openrag_tui.cluster.state import death_reason, parse
from openrag_tui.cluster.summary import view_as_dict
from tests.support.synthetic import pool_spec_of, recorded, rows

POOLS = (pool_spec_of("indexer", 4, 0.5), pool_spec_of("marker", 3, 1.0))
OOM = {"oom_context": {"error_message": "Task was killed due to the node running low on memory."}}
NODE = {"actor_died_error_context": {"error_message": "node died", "reason": "NODE_DIED"}}
KILL = {
    "actor_died_error_context": {"error_message": "killed by `ray.kill`.", "reason": "RAY_KILL"}
}
EXIT = {
    "actor_died_error_context": {
        "error_message": "Worker exit type: INTENDED_USER_EXIT Worker exit detail: User "
        "requested to exit the actor.",
        "reason": "WORKER_DIED",
    }
}


def test_the_cause_is_read_from_rays_death_cause() -> None:
    assert death_reason(OOM) == "out_of_memory"
    assert death_reason(NODE) == "node_died"
    assert death_reason(KILL) == "killed"
    assert death_reason(EXIT) == "exited"
    assert death_reason({"creation_task_failure_context": {}}) == "creation_failed"
    assert death_reason(None) == "unknown"


def _with_deaths(causes: list[dict]) -> dict:
    payloads = recorded()
    actors = rows(payloads, "actors_detail")
    indexers = [a for a in actors if a["class_name"] == "IndexerWorkerActor"]
    for actor, cause in zip(indexers, causes, strict=False):
        actor["state"], actor["death_cause"], actor["node_id"] = "DEAD", cause, None
    return payloads


def test_deaths_are_warned_about_with_their_cause_and_listed_in_json() -> None:
    payloads = _with_deaths([OOM, OOM, EXIT])
    view = build_view(parse(payloads, 1000.0), POOLS, now=1000.0, stale_after=6.0)
    (warning,) = [w for w in view.warnings if "dead" in w]
    assert warning == "2 indexer actors are dead: 2 killed by Ray's memory monitor (out of memory)."
    summary = view_as_dict(view, "http://127.0.0.1:8265")
    assert [d["reason"] for d in summary["deaths"]] == ["out_of_memory", "out_of_memory"]
    assert {d["owner"] for d in summary["deaths"]} == {"openrag"}
    indexer = summary["pools"][0]
    assert indexer["dead"] == 3 and indexer["owners"]["openrag"]["dead"] == 3


def test_with_the_refresh_before_only_new_deaths_are_warned_about() -> None:
    before = parse(_with_deaths([OOM]), 990.0)
    now = parse(_with_deaths([OOM, KILL]), 1000.0)
    view = build_view(now, POOLS, now=1000.0, stale_after=6.0, previous=before)
    (warning,) = [w for w in view.warnings if "died" in w]
    assert warning == "1 indexer actor died since the last refresh: 1 killed by a user (ray.kill)."
