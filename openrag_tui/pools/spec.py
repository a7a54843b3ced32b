"""The Ray names of a pool's actors: `ortui-supervisor-<pool>` and `ortui-<pool>-<n>`.

Names start with `ortui-`, so they never clash with OpenRAG's own actors (`SerializerQueue`,
`MarkerPool`, `IndexerPoolDispatcher-v6`, `IndexerWorker-v6-*`, `TaskStateManager`). What a
pool is (size, GPUs, slots) is `config.pools.PoolSpec`, read from the shared .env.
"""

from __future__ import annotations

import re

from openrag_tui.config.pools import check_pool


def supervisor_name(pool: str) -> str:
    return f"ortui-supervisor-{check_pool(pool)}"


def actor_prefix(pool: str) -> str:
    return f"ortui-{check_pool(pool)}-"


def actor_name(pool: str, index: int) -> str:
    return f"{actor_prefix(pool)}{index}"


def actor_index(pool: str, name: str) -> int | None:
    """The counter in a worker's name (`ortui-indexer-7` -> 7); None for any other name."""
    match = re.fullmatch(re.escape(actor_prefix(pool)) + r"(\d+)", name)
    return int(match[1]) if match else None
