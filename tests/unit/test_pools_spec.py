"""Pool specs and names from the .env, the task registry, and where the driver connects."""

from __future__ import annotations

import pytest

from openrag_tui.config import Settings
from openrag_tui.config.pools import UnknownPool, pool_spec, size_key
from openrag_tui.pools import tasks
from openrag_tui.pools.connection import resolve_address
from openrag_tui.pools.spec import actor_index, actor_name, supervisor_name


def settings(**values: str) -> Settings:
    return Settings.from_values(values)


def test_specs_read_sizes_requests_and_concurrency_from_the_env() -> None:
    env = settings(
        RAY_POOL_SIZE="3",
        RAY_NUM_GPUS="0.25",
        RAY_MAX_TASKS_PER_WORKER="7",
        MARKER_POOL_SIZE="2",
        MARKER_NUM_GPUS="0.5",
        MARKER_MAX_PROCESSES="4",
        MARKER_MIN_PROCESSES="2",
        MARKER_MAX_TASKS_PER_CHILD="9",
        OPENRAG_TUI_POOL_NUM_CPUS="0.5",
        OPENRAG_TUI_NAMESPACE="ops",
    )
    indexer, marker = pool_spec(env, "indexer"), pool_spec(env, "marker")
    assert (indexer.size, indexer.num_gpus, indexer.num_cpus, indexer.slots) == (3, 0.25, 0.5, 7)
    assert (marker.size, marker.num_gpus, marker.slots) == (2, 0.5, 4)
    assert (marker.min_processes, marker.max_tasks_per_child) == (2, 9)
    assert indexer.namespace == marker.namespace == "ops"


def test_defaults_are_openrags() -> None:
    indexer, marker = pool_spec(settings(), "indexer"), pool_spec(settings(), "marker")
    assert (indexer.size, indexer.num_gpus, indexer.slots, indexer.namespace) == (
        1, 0.1, 5, "openrag",
    )  # fmt: skip
    assert (marker.size, marker.num_gpus, marker.slots, marker.max_tasks_per_child) == (
        1, 0.01, 2, 10,
    )  # fmt: skip


def test_names_cannot_clash_with_openrags_actors() -> None:
    assert supervisor_name("indexer") == "ortui-supervisor-indexer"
    assert actor_name("indexer", 12) == "ortui-indexer-12"
    assert actor_index("indexer", "ortui-indexer-12") == 12
    for other in ("IndexerWorker-v6-0", "ortui-marker-1", "ortui-indexer-x", "ortui-indexer-"):
        assert actor_index("indexer", other) is None
    assert (size_key("indexer"), size_key("marker")) == ("RAY_POOL_SIZE", "MARKER_POOL_SIZE")


def test_an_unknown_pool_is_refused_with_the_choices() -> None:
    with pytest.raises(UnknownPool, match="indexer or marker"):
        pool_spec(settings(), "Indexer")


def test_tasks_register_in_one_line_and_unknown_kinds_say_what_exists() -> None:
    @tasks.task("test-double")
    def double(value: int) -> int:
        return 2 * value

    try:
        assert tasks.resolve("test-double") is double
        with pytest.raises(ValueError, match="already registered"):
            tasks.task("test-double")(lambda value: value)
        with pytest.raises(tasks.UnknownTask, match="noop"):
            tasks.resolve("nope")
    finally:
        del tasks.TASKS["test-double"]


def test_the_address_comes_from_the_option_then_head_then_ray_address_then_auto() -> None:
    env = settings(RAY_HEAD_ADDRESS="head:6379", RAY_ADDRESS="ray://head:10001")
    environ = {"RAY_HEAD_ADDRESS": "env-head:6379", "RAY_ADDRESS": "env:6379"}
    assert resolve_address("cli:6379", env, environ) == ("cli:6379", "--address")
    assert resolve_address(None, env, environ) == ("head:6379", "RAY_HEAD_ADDRESS")
    only_client = settings(RAY_ADDRESS="ray://head:10001")
    assert resolve_address(None, only_client, {}) == ("ray://head:10001", "RAY_ADDRESS")
    assert resolve_address(None, settings(), environ) == ("env-head:6379", "RAY_HEAD_ADDRESS")
    assert resolve_address(None, settings(), {}) == ("auto", "auto")
