"""Record real dashboard payloads from a live two-node test cluster into tests/data/recorded/.

Run from the repository root: `.venv/bin/python scripts/record_payloads.py`. It starts the same
isolated cluster and actor scenario as the cluster tests, so the pure tests parse what the live
tests see. Re-run it after a Ray upgrade and review the diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import scenario  # noqa: E402
from tests.support.raycluster import running_cluster, wait_until  # noqa: E402

OUT = ROOT / "tests" / "data" / "recorded"

ENDPOINTS = {
    "version": "/api/version",
    "nodes_detail": "/api/v0/nodes?detail=1",
    "actors_detail": "/api/v0/actors?detail=1&limit=10000",
    "nodes_summary": "/nodes?view=summary",
    "cluster_status": "/api/cluster_status",
    "cluster_events": "/api/v0/cluster_events?limit=1000",
    "placement_groups": "/api/v0/placement_groups?detail=1",
}


def main() -> None:
    import ray
    import requests

    OUT.mkdir(parents=True, exist_ok=True)
    with running_cluster((4, 2)) as cluster:
        ray.init(address=cluster.gcs_address, log_to_driver=False, logging_level="ERROR")
        try:
            ids = scenario.node_ids_by_role()
            scenario.create(ids)

            def demand_reported() -> bool:
                body = requests.get(cluster.dashboard_url + "/api/cluster_status", timeout=5).json()
                report = body["data"]["clusterStatus"]["loadMetricsReport"]
                return len(report.get("resourceDemand") or []) >= 2

            wait_until(demand_reported, 60, "the autoscaler to report the pending demand")
            for name, path in ENDPOINTS.items():
                body = requests.get(cluster.dashboard_url + path, timeout=10).json()
                (OUT / f"{name}.json").write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
            for role, node_id in ids.items():
                body = requests.get(f"{cluster.dashboard_url}/nodes/{node_id}", timeout=10).json()
                (OUT / f"node_{role}.json").write_text(
                    json.dumps(body, indent=1, sort_keys=True) + "\n"
                )
            print(f"recorded {len(ENDPOINTS) + len(ids)} payloads into {OUT}")
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
