"""The supervisor's decisions as plain data: least-loaded dispatch, whom to retire, drains."""

from __future__ import annotations

from openrag_tui.pools.roster import Phase, Plan, PoolState, Roster


def roster(*members: tuple[str, Phase, int], slots: int = 2) -> Roster:
    """Members as (name, phase, in_flight); the index follows the order given."""
    built = Roster(slots)
    for index, (name, phase, in_flight) in enumerate(members):
        built.add(name, index, phase).in_flight = in_flight
    return built


def test_pick_takes_the_least_loaded_alive_member_the_oldest_on_ties() -> None:
    pool = roster(("a", Phase.ALIVE, 1), ("b", Phase.ALIVE, 0), ("c", Phase.ALIVE, 0))
    assert pool.pick().name == "b"


def test_pick_skips_pending_retiring_and_full_members() -> None:
    pool = roster(
        ("pending", Phase.PENDING, 0),
        ("retiring", Phase.RETIRING, 0),
        ("full", Phase.ALIVE, 2),
        ("free", Phase.ALIVE, 1),
    )
    assert pool.pick().name == "free"
    pool.members["free"].in_flight = 2
    assert pool.pick() is None


def test_growing_revives_retirees_before_creating() -> None:
    pool = roster(("a", Phase.ALIVE, 0), ("b", Phase.RETIRING, 1), ("c", Phase.RETIRING, 2))
    assert pool.plan(3) == Plan(revive=("c", "b"))
    assert pool.plan(5) == Plan(revive=("c", "b"), create=2)
    assert pool.plan(2) == Plan(revive=("c",))


def test_shrinking_retires_pending_first_then_the_least_busy_newest() -> None:
    pool = roster(
        ("old-idle", Phase.ALIVE, 0),
        ("busy", Phase.ALIVE, 2),
        ("new-idle", Phase.ALIVE, 0),
        ("pending", Phase.PENDING, 0),
    )
    assert pool.plan(3) == Plan(retire=("pending",))
    assert pool.plan(1) == Plan(retire=("pending", "new-idle", "old-idle"))
    assert pool.plan(0).retire[-1] == "busy"


def test_a_plan_that_matches_the_target_changes_nothing() -> None:
    pool = roster(("a", Phase.ALIVE, 0), ("b", Phase.PENDING, 0), ("c", Phase.RETIRING, 1))
    assert pool.plan(2) == Plan()


def test_retirees_are_drained_once_their_tasks_are_done() -> None:
    pool = roster(("a", Phase.ALIVE, 1), ("b", Phase.ALIVE, 0), ("c", Phase.ALIVE, 2))
    pool.apply(pool.plan(1))
    assert [m.name for m in pool.in_phase(Phase.RETIRING)] == ["a", "b"]
    assert pool.pick() is None  # c is full and retirees take no new work
    assert [m.name for m in pool.drained()] == ["b"]
    pool.members["a"].in_flight = 0
    assert [m.name for m in pool.drained()] == ["a", "b"]
    assert pool.counts() == {"pending": 0, "alive": 1, "retiring": 2, "in_flight": 2}


def test_settled_means_exactly_the_target_alive_and_nothing_moving() -> None:
    def state(target: int, alive: int, pending: int = 0, retiring: int = 0) -> PoolState:
        return PoolState(
            "indexer", target, alive, pending, retiring, 0, 0, 2, (), 0, 0, 0, version=1
        )

    assert state(2, 2).settled
    assert not state(2, 2, retiring=1).settled
    assert not state(3, 2, pending=1).settled
    assert state(0, 0).settled


def test_a_new_generation_retires_the_old_members_and_never_revives_them() -> None:
    roster = Roster(slots=2)
    for index in range(2):
        roster.add(f"a{index}", index, Phase.ALIVE)
    roster.members["a0"].in_flight = 1
    roster.generation += 1  # a new GPU share
    plan = roster.plan(2)
    assert plan == Plan(create=2, retire=("a0", "a1"))
    roster.apply(plan)
    roster.add("b2", 2)
    roster.add("b3", 3)
    assert [m.name for m in roster.drained()] == ["a1"]  # a0 finishes its task first
    assert roster.plan(3) == Plan(create=1)  # a retiring a0 is not revived
