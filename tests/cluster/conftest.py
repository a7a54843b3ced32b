"""Cluster tests: the real two-node cluster with the known actor scenario on it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import requests

from tests.support import scenario
from tests.support.raycluster import TestCluster, wait_until


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="module")
def scenario_cluster(ray_cluster: TestCluster) -> Iterator[TestCluster]:
    """The cluster with the scenario's actors, removed again afterwards (the cluster is shared)."""
    import ray
    from ray.util.placement_group import (
        PlacementGroup,
        placement_group_table,
        remove_placement_group,
    )

    ray.init(address=ray_cluster.gcs_address, log_to_driver=False, logging_level="ERROR")
    try:
        scenario.create(scenario.node_ids_by_role())
        wait_until(
            lambda: _demand_reported(ray_cluster.dashboard_url),
            60,
            "the autoscaler to report the pending actors' demand and the infeasible one",
        )
        yield ray_cluster
    finally:
        for planned in scenario.PLAN:
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(planned.name, namespace=scenario.NAMESPACE))
        for group in placement_group_table().values():
            if group["state"] != "REMOVED":
                group_id = ray.PlacementGroupID.from_hex(group["placement_group_id"])
                remove_placement_group(PlacementGroup(group_id))
        ray.shutdown()


def _demand_reported(url: str) -> bool:
    status = requests.get(f"{url}/api/cluster_status", timeout=5).json()
    demand = status["data"]["clusterStatus"]["loadMetricsReport"].get("resourceDemand") or []
    events = requests.get(f"{url}/api/v0/cluster_events", timeout=5).json()
    messages = [event["message"] for event in events["data"]["result"]["result"]]
    return len(demand) >= 2 and any("{'GPU': 8.0}" in message for message in messages)
