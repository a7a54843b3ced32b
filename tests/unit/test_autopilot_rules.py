"""The autopilot's decisions: grow to the backlog within the maximum, the budget and the
cluster; shrink after the idle period, never below the busy actors; a hand resize holds."""

from __future__ import annotations

from dataclasses import replace

from openrag_tui.pools.autopilot_rules import Limits, Look, Memory, decide

LIMITS = Limits(minimum=1, maximum=6, gpu_budget=None, idle_seconds=60.0)
IDLE = Look("indexer", target=2, pending=0, busy=0, slots=2, share=0.25, queued=0, running=0,
            batches=(), fits_more=10, others_gpus=0.0)  # fmt: skip
BUSY = replace(IDLE, queued=40, running=4, batches=("b1",))


def test_a_backlog_grows_the_pool_to_its_maximum() -> None:
    step, memory = decide(BUSY, LIMITS, Memory(), now=0.0)
    assert (step.size_from, step.size) == (2, 6)
    assert "40 file(s) wait" in step.reason
    assert memory.last_target == 6


def test_the_budget_and_the_cluster_stop_growth_first() -> None:
    budget = replace(LIMITS, gpu_budget=1.0)  # four actors of 0.25, the marker holds 0.25
    step, _ = decide(replace(BUSY, others_gpus=0.25), budget, Memory(), 0.0)
    assert step.size == 3 and "GPU budget of 1" in step.reason
    step, _ = decide(replace(BUSY, fits_more=1), LIMITS, Memory(), 0.0)
    assert step.size == 3 and "no more room" in step.reason
    step, _ = decide(replace(BUSY, fits_more=0), LIMITS, Memory(), 0.0)
    assert step.size is None and "no room for another actor" in step.reason


def test_no_growth_while_an_actor_waits_for_room() -> None:
    step, _ = decide(replace(BUSY, pending=1), LIMITS, Memory(), 0.0)
    assert step is None


def test_idle_shrinks_to_the_minimum_after_the_idle_period_never_below_busy_actors() -> None:
    six = replace(IDLE, target=6)
    step, memory = decide(six, LIMITS, Memory(), now=100.0)
    assert step is None and memory.idle_since == 100.0
    step, memory = decide(six, LIMITS, memory, now=150.0)
    assert step is None
    step, memory = decide(replace(six, busy=3, running=3), LIMITS, memory, now=161.0)
    assert (step.size_from, step.size) == (6, 3)
    step, _ = decide(replace(six, target=3), LIMITS, memory, now=170.0)
    assert step.size == 1


def test_a_hand_resize_holds_until_the_backlog_changes() -> None:
    _, memory = decide(BUSY, LIMITS, Memory(), 0.0)  # the autopilot set 6
    step, memory = decide(replace(BUSY, target=2), LIMITS, memory, 5.0)  # an operator: 2
    assert step.size is None and "by hand" in step.reason
    for now in (10.0, 500.0):
        assert decide(replace(BUSY, target=2), LIMITS, memory, now) == (None, memory)
    step, _ = decide(replace(BUSY, target=2, batches=("b1", "b2")), LIMITS, memory, 600.0)
    assert step.size == 6  # a new batch: following the backlog again


def test_a_target_above_the_maximum_comes_down_and_below_the_minimum_up() -> None:
    step, _ = decide(replace(IDLE, target=9), LIMITS, Memory(), 0.0)
    assert step.size == 6
    step, _ = decide(replace(IDLE, target=0), LIMITS, Memory(), 0.0)
    assert step.size == 1
