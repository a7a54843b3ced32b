"""Start the two-node test cluster with the scenario's actors and keep it up until interrupted.

For looking at the panel by hand: run this in one terminal, then
`openrag-tui --dashboard <the printed URL>` in another. Ctrl-C tears the cluster down.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import scenario  # noqa: E402
from tests.support.raycluster import running_cluster  # noqa: E402


def main() -> None:
    import ray

    with running_cluster((4, 2)) as cluster:
        ray.init(address=cluster.gcs_address, log_to_driver=False, logging_level="ERROR")
        scenario.create(scenario.node_ids_by_role())
        ray.shutdown()
        print(f"dashboard {cluster.dashboard_url}  gcs {cluster.gcs_address}", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main()
