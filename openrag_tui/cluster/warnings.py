"""What is worth a warning line about a cluster view: old data, bodies that could not be read,
cut listings, dead nodes, pools started with other settings or too large to fit, and pool actors
that died, with Ray's cause.

Pure sentences from plain data; the panel and `status` print them as they are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from openrag_tui.cluster.rooms import GPU, figure, units
from openrag_tui.cluster.state import DEATH_REASONS, Actor, ClusterState

if TYPE_CHECKING:
    from openrag_tui.cluster.allocation import PoolStatus

#: deaths that are not news: an actor that ended because it was meant to
_QUIET_DEATHS = frozenset({"exited"})


def deaths(
    state: ClusterState,
    previous: ClusterState | None = None,
    candidates: Iterable[Actor] | None = None,
) -> list[Actor]:
    """Pool actors that died (of something worth telling): with `previous`, only those that
    were not yet dead in it. `candidates`: the actors to look at, if not all the state's."""
    before = (
        None
        if previous is None
        else {actor.actor_id for actor in previous.actors if actor.state == "DEAD"}
    )
    return [
        actor
        for actor in (state.actors if candidates is None else candidates)
        if actor.state == "DEAD"
        and actor.pool is not None
        and actor.death_reason not in _QUIET_DEATHS
        and (before is None or actor.actor_id not in before)
    ]


def death_sentence(dead: Sequence[Actor], since_last: bool) -> str:
    """`3 indexer actors died since the last refresh: 2 killed by Ray's memory monitor …`."""
    pools = Counter(actor.pool for actor in dead)
    who = " and ".join(
        f"{count} {pool} actor{'s' if count > 1 else ''}" for pool, count in sorted(pools.items())
    )
    causes = Counter(actor.death_reason or "unknown" for actor in dead)
    why = ", ".join(f"{count} {DEATH_REASONS[reason]}" for reason, count in causes.most_common())
    verb = "died since the last refresh" if since_last else ("is" if len(dead) == 1 else "are")
    if since_last:
        return f"{who} {verb}: {why}."
    return f"{who} {verb} dead: {why}."


def view_warnings(
    state: ClusterState,
    pools: Sequence[PoolStatus],
    now: float,
    stale_after: float,
    previous: ClusterState | None = None,
    *,
    dead: Iterable[Actor],
    gpu_requests: Mapping[str, set[int]],
) -> tuple[str, ...]:
    """The warning lines. A view that went through the actors already gives what it found:
    `dead`, actors among which are the pool's dead ones, and `gpu_requests`, each pool's
    distinct GPU requests of its alive actors, in units."""
    warnings = []
    age = now - state.fetched_at
    if age > stale_after:
        warnings.append(f"Cluster data is {age:.0f} s old; it may be out of date.")
    warnings.extend(state.unread)
    if state.actors_truncated:
        warnings.append(
            f"Showing {len(state.actors)} of {state.actors_total} actors: "
            "the figures count only the actors shown."
        )
    for node in state.nodes:
        if not node.is_alive:
            warnings.append(f"Node {node.label} ({node.node_id[:8]}) is {node.state}.")
    died = deaths(state, previous, dead)
    if died:
        warnings.append(death_sentence(died, since_last=previous is not None))
    for pool in pools:
        started_with = gpu_requests.get(pool.name, set()) - {units(pool.gpus_per_actor)}
        if started_with:
            amounts = " or ".join(f"{figure(GPU, count)}" for count in sorted(started_with))
            warnings.append(
                f"Some {pool.name} actors reserve {amounts} GPU each, not the "
                f"{figure(GPU, units(pool.gpus_per_actor))} the .env says: they were started "
                "with other settings."
            )
        if pool.fits_on_idle is not None and pool.target > pool.fits_on_idle:
            warnings.append(
                f"The {pool.name} pool wants {pool.target} actors of "
                f"{figure(GPU, units(pool.gpus_per_actor))} GPU, but the alive nodes could "
                f"hold only {pool.fits_on_idle} even when idle."
            )
    return tuple(warnings)
