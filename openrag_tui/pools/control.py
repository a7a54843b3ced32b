"""The driver side of the pools: connect, deploy, scale, tear down, submit work.

The CLI and the panel both call these (the panel from a worker thread). Calls are synchronous and
return frozen data. After `connect`, every call works in the namespace of the .env
(`OPENRAG_TUI_NAMESPACE`, default `openrag`), where the supervisors are named
`ortui-supervisor-<pool>`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import ray
from ray.actor import ActorHandle

from openrag_tui.cluster.allocation import ClusterView
from openrag_tui.config import EnvFile, Settings, set_env_values
from openrag_tui.config.pools import POOLS, check_pool, pool_spec, size_key
from openrag_tui.pools.connection import Connection, connect, resolve_address
from openrag_tui.pools.errors import ClusterUnreachable, PoolsNotDeployed
from openrag_tui.pools.roster import Phase, PoolState
from openrag_tui.pools.spec import actor_index, supervisor_name
from openrag_tui.pools.supervisor import PoolSupervisor
from openrag_tui.pools.tasks import resolve

__all__ = [
    "ClusterUnreachable",
    "Connection",
    "PendingReason",
    "PoolsNotDeployed",
    "ScaleResult",
    "connect",
    "deploy",
    "explain_pending",
    "reapply",
    "record_size",
    "resolve_address",
    "run",
    "scale",
    "state",
    "status",
    "submit",
    "teardown",
    "wait_for",
]

WATCH_SECONDS = 1.0
# Callers waiting for a slot wait inside the supervisor, not in Ray's queue (nor behind it).
SUPERVISOR_CONCURRENCY = 100_000

_Supervisor = ray.remote(PoolSupervisor)


@dataclass(frozen=True)
class PendingReason:
    name: str
    reason: str  # "waiting" or "infeasible", as the cluster view classifies it
    detail: str


@dataclass(frozen=True)
class ScaleResult:
    """Where a resize stands. `outcome`: `reached` (exactly `requested` alive, none starting or
    draining), `superseded` (a later resize changed the target) or `unsettled` (not waited for,
    or still pending or draining at the timeout). `why_unknown` says why `why_pending` could
    not be filled (the dashboard was unreachable)."""

    pool: str
    requested: int
    outcome: str
    state: PoolState
    why_pending: tuple[PendingReason, ...] = ()
    why_unknown: str | None = None


# Deploying and resizing


def deploy(settings: Settings) -> dict[str, PoolState]:
    """Start (or find) both supervisors and give them the .env's spec and size. Idempotent."""
    applied = {}
    for pool in POOLS:
        spec = pool_spec(settings, pool)
        supervisor = _Supervisor.options(
            name=supervisor_name(pool),
            namespace=spec.namespace,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_restarts=-1,
            max_concurrency=SUPERVISOR_CONCURRENCY,
        ).remote(spec)
        applied[pool] = supervisor.apply.remote(spec)
    return {pool: ray.get(ref) for pool, ref in applied.items()}


def reapply(settings: Settings) -> dict[str, PoolState | None]:
    """Give each deployed pool the .env's spec (size, slots, GPU share: actors of another
    share are replaced, drained first); None for a pool that is not deployed (left so)."""
    refs = {}
    for pool in POOLS:
        try:
            refs[pool] = _supervisor(pool).apply.remote(pool_spec(settings, pool))
        except PoolsNotDeployed:
            refs[pool] = None
    return {pool: None if ref is None else ray.get(ref) for pool, ref in refs.items()}


def scale(
    pool: str,
    size: int,
    wait: bool = True,
    timeout: float = 60.0,
    on_progress: Callable[[PoolState], None] | None = None,
) -> ScaleResult:
    """Set the pool's target size; with `wait`, return once reached, superseded or timed out."""
    if size < 0:
        raise ValueError(f"a pool size is a whole number of 0 or more (got {size})")
    supervisor = _supervisor(pool)
    state = ray.get(supervisor.resize.remote(size))
    if wait:
        state = _wait(supervisor, size, timeout, on_progress, state)
    return ScaleResult(pool, size, _outcome(state, size), state)


def record_size(env: EnvFile, pool: str, size: int) -> EnvFile:
    """Write the pool's size into the shared .env so a restart keeps it; only that value changes.

    Raises EnvEditRefused (nothing written) if the edit would leave the file broken."""
    return set_env_values(env, {size_key(pool): str(size)})


def wait_for(
    pool: str,
    size: int,
    timeout: float = 60.0,
    on_progress: Callable[[PoolState], None] | None = None,
) -> ScaleResult:
    """Wait (without changing anything) until the pool has `size` actors settled."""
    supervisor = _supervisor(pool)
    state = _wait(supervisor, size, timeout, on_progress, ray.get(supervisor.status.remote()))
    return ScaleResult(pool, size, _outcome(state, size), state)


def _wait(
    supervisor: ActorHandle,
    size: int,
    timeout: float,
    on_progress: Callable[[PoolState], None] | None,
    state: PoolState,
) -> PoolState:
    deadline = time.monotonic() + timeout
    if on_progress is not None:
        on_progress(state)
    while _outcome(state, size) == "unsettled":
        left = deadline - time.monotonic()
        if left <= 0:
            break
        state = ray.get(supervisor.watch.remote(state.version, min(left, WATCH_SECONDS)))
        if on_progress is not None:
            on_progress(state)
    return state


def _outcome(state: PoolState, size: int) -> str:
    if state.target != size:
        return "superseded"
    return "reached" if state.settled else "unsettled"


def explain_pending(result: ScaleResult, view: ClusterView) -> ScaleResult:
    """The result with the cluster view's reason for each of its pending actors."""
    names = set(result.state.names(Phase.PENDING))
    namespace = ray.get_runtime_context().namespace
    reasons = tuple(
        PendingReason(item.actor.name, item.reason, item.detail)
        for item in view.pending
        if item.actor.name in names and item.actor.namespace == namespace
    )
    return replace(result, why_pending=reasons)


def state(pool: str) -> PoolState:
    """One pool's state; PoolsNotDeployed if it has no supervisor."""
    return ray.get(_supervisor(pool).status.remote())


def status() -> dict[str, PoolState | None]:
    """Each pool's state, None for a pool that is not deployed."""
    states: dict[str, PoolState | None] = {}
    for pool in POOLS:
        try:
            states[pool] = state(pool)
        except PoolsNotDeployed:
            states[pool] = None
    return states


def teardown() -> list[str]:
    """End both pools and their supervisors, and any stray `ortui-<pool>-<n>` actor."""
    ended: list[str] = []
    for pool in POOLS:
        with contextlib.suppress(PoolsNotDeployed):
            supervisor = _supervisor(pool)
            ended += ray.get(supervisor.shutdown.remote())
            ray.kill(supervisor, no_restart=True)
            ended.append(supervisor_name(pool))
    namespace = ray.get_runtime_context().namespace
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name = entry["name"]
        ours = any(actor_index(pool, name) is not None for pool in POOLS)
        if entry["namespace"] == namespace and ours and name not in ended:
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
                ended.append(name)
    return ended


# Work


def submit(pool: str, kind: str, *args: Any) -> ray.ObjectRef:
    """Queue one task; the reference resolves to its result once an actor ran it."""
    return _supervisor(pool).run.remote(resolve(kind), args)


def run(pool: str, kind: str, *args: Any, timeout: float | None = None) -> Any:
    """Run one task and return its result."""
    return ray.get(submit(pool, kind, *args), timeout=timeout)


def _supervisor(pool: str) -> ActorHandle:
    name = supervisor_name(check_pool(pool))
    try:
        return ray.get_actor(name)
    except ValueError:
        namespace = ray.get_runtime_context().namespace
        raise PoolsNotDeployed(
            f"the {pool} pool is not deployed in namespace {namespace!r}: "
            "run `openrag-tui pools deploy`"
        ) from None
