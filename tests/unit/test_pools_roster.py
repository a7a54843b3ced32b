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


# Leases: slots handed to callers that run tasks on the actors themselves


def _in_flight(pool: Roster) -> dict[str, int]:
    return {name: member.in_flight for name, member in pool.members.items()}


def test_a_lease_takes_slots_least_loaded_first_and_a_give_back_frees_them() -> None:
    pool = roster(("a", Phase.ALIVE, 1), ("b", Phase.ALIVE, 0), ("c", Phase.RETIRING, 0))
    taken = pool.take(4)
    assert [m.name for m in taken] == ["b", "a", "b"]  # 3 free slots on alive members
    pool.lease("coordinator", "one", taken, now=0.0)
    assert _in_flight(pool) == {"a": 2, "b": 2, "c": 0}
    pool.give_back("coordinator", "one", {"b": 1, "a": 5}, now=1.0)  # never more than held
    assert _in_flight(pool) == {"a": 1, "b": 1, "c": 0}
    assert pool.holdings["coordinator"].slots == {"b": 1}


def test_a_restarted_holder_frees_its_old_slots_and_the_old_one_is_ignored() -> None:
    pool = roster(("a", Phase.ALIVE, 0), ("b", Phase.ALIVE, 0))
    pool.lease("coordinator", "old", pool.take(4), now=0.0)
    assert _in_flight(pool) == {"a": 2, "b": 2}
    pool.holding("coordinator", "new", now=1.0)  # as the supervisor does on a lease
    assert sum(_in_flight(pool).values()) == 0  # the old incarnation's slots are freed
    pool.lease("coordinator", "new", pool.take(1), now=1.0)
    assert sum(_in_flight(pool).values()) == 1
    pool.give_back("coordinator", "old", {"a": 2, "b": 2}, now=2.0)  # too late: ignored
    assert sum(_in_flight(pool).values()) == 1


def test_a_lease_not_renewed_lapses_and_frees_its_slots() -> None:
    pool = roster(("a", Phase.ALIVE, 0), ("b", Phase.ALIVE, 0))
    pool.lease("gone", "x", pool.take(2), now=0.0)
    pool.lease("here", "y", pool.take(1), now=0.0)
    pool.renew("here", "y", {"a": 1}, now=10.0)
    assert pool.lapse(now=16.0, ttl=15.0) == ["gone"]
    assert sum(_in_flight(pool).values()) == 1
    assert list(pool.holdings) == ["here"]


def test_renewing_adopts_what_an_unknown_holder_holds_on_members_still_here() -> None:
    """A restarted supervisor knows no lease: the holders' word is taken, for its members."""
    pool = roster(("a", Phase.ALIVE, 0), ("b", Phase.RETIRING, 0))
    pool.renew("coordinator", "one", {"a": 2, "b": 1, "gone": 3}, now=0.0)
    assert _in_flight(pool) == {"a": 2, "b": 1}
    assert pool.drained() == []  # b drains only once its holder gives its slot back
    pool.renew("coordinator", "one", {"a": 5}, now=1.0)  # a known holder: its record stands
    assert _in_flight(pool) == {"a": 2, "b": 1}


def test_a_member_that_leaves_takes_its_leased_slots_with_it() -> None:
    pool = roster(("a", Phase.ALIVE, 0), ("b", Phase.ALIVE, 0))
    pool.lease("coordinator", "one", pool.take(4), now=0.0)
    pool.remove("a")
    assert pool.holdings["coordinator"].slots == {"b": 2}
    pool.give_back("coordinator", "one", {"a": 2, "b": 2}, now=1.0)
    assert _in_flight(pool) == {"b": 0}
