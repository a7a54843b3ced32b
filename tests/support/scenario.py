"""A known mix of fractional-GPU actors on the two-node test cluster (head 4 GPUs, worker 2).

Used by the cluster-view tests (every figure asserted exactly) and by scripts/record_payloads.py,
so the recorded payloads and the live tests describe the same cluster.

    head   (4 GPU): IndexerWorkerActor 0.5 + 0.5, MarkerWorker 1, PG bundle 1 (Trainer): 3 reserved
    worker (2 GPU): IndexerWorkerActor 0.5, MarkerWorker 1: 1.5 reserved
    pending: MarkerWorker 2.0 GPU (waiting: both nodes could hold it, neither now),
             Worker 8 GPU (infeasible: no node has 8)
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "scenario"


@dataclass(frozen=True)
class PlannedActor:
    """One actor of the scenario: where it goes and what it asks for."""

    name: str
    class_name: str
    gpus: float
    node: str | None  # "head", "worker", or None (left to Ray: it will stay pending)
    in_placement_group: bool = False


PLAN: tuple[PlannedActor, ...] = (
    PlannedActor("idx-head-0", "IndexerWorkerActor", 0.5, "head"),
    PlannedActor("idx-head-1", "IndexerWorkerActor", 0.5, "head"),
    PlannedActor("marker-head", "MarkerWorker", 1.0, "head"),
    PlannedActor("trainer-pg", "Trainer", 1.0, "head", in_placement_group=True),
    PlannedActor("idx-worker-0", "IndexerWorkerActor", 0.5, "worker"),
    PlannedActor("marker-worker", "MarkerWorker", 1.0, "worker"),
    PlannedActor("marker-waiting", "MarkerWorker", 2.0, None),
    PlannedActor("too-big", "Worker", 8.0, None),
)


def _actor_class(class_name: str):
    """A remote class with the given name, built at run time so Ray pickles it by value."""
    import ray

    cls = type(class_name, (), {"ping": lambda self: "pong"})
    return ray.remote(cls)


def create(node_ids: dict[str, str]) -> None:
    """Create the scenario's detached actors on a connected driver; wait for the placed ones.

    `node_ids` maps "head" and "worker" to Ray node ids.
    """
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import (
        NodeAffinitySchedulingStrategy,
        PlacementGroupSchedulingStrategy,
    )

    placed = []
    for planned in PLAN:
        options: dict = {
            "name": planned.name,
            "namespace": NAMESPACE,
            "lifetime": "detached",
            "num_cpus": 0,
            "num_gpus": planned.gpus,
        }
        if planned.in_placement_group:
            group = placement_group(
                [{"GPU": planned.gpus, "CPU": 0.01}],
                strategy="STRICT_PACK",
                name="scenario-pg",
                lifetime="detached",
                bundle_label_selector=[{"ray.io/node-id": node_ids[planned.node]}],
            )
            ray.get(group.ready(), timeout=60)
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(group)
        elif planned.node is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                node_ids[planned.node], soft=False
            )
        actor = _actor_class(planned.class_name).options(**options).remote()
        if planned.node is not None:
            placed.append(actor.ping.remote())
    ray.get(placed, timeout=120)


def node_ids_by_role() -> dict[str, str]:
    """The head's and the (single) worker's node ids, from a connected driver."""
    import ray

    ids: dict[str, str] = {}
    for node in ray.nodes():
        if not node["Alive"]:
            continue
        role = "head" if "node:__internal_head__" in node["Resources"] else "worker"
        ids[role] = node["NodeID"]
    return ids
