"""The autopilot: a detached actor that sizes our pools to the ledger's backlog.

It runs with no panel open and comes back after its own restart (Ray restarts it; its memory
is in `autopilot.json` beside the ledger). Every look it reads the shared .env again, so
`OPENRAG_TUI_AUTOPILOT=off` there stops it acting, and the limits take effect at once. Each
step writes the new size into the .env first (the .env always holds the current size), then
resizes the pool; each is one line of `autopilot.jsonl` beside the ledger, with its reason,
and a line of the actor's log. `autopilot status` and the panel read those two files: no Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray
from ray.actor import ActorHandle

from openrag_tui.cluster.dashboard import DashboardClient, default_dashboard_url, load_token
from openrag_tui.cluster.refresh import read_view
from openrag_tui.config import EnvEditRefused, EnvFile, Settings, set_env_values
from openrag_tui.config.pools import POOLS, pool_spec, size_key
from openrag_tui.indexing.autopilot_log import (
    TICK_SECONDS,
    append_line,
    log_path,
    read_status,
    state_path,
    write_atomically,
)
from openrag_tui.indexing.ledger import LedgerReader, PoolBacklog
from openrag_tui.indexing.paths import Where
from openrag_tui.pools.autopilot_rules import Limits, Look, Memory, Step, decide
from openrag_tui.pools.roster import PoolState
from openrag_tui.pools.spec import supervisor_name

AUTOPILOT_NAME = "ortui-autopilot"

_log = logging.getLogger(__name__)


class Autopilot:
    """Looks every TICK_SECONDS; at most one resize per pool per look."""

    def __init__(self, env_path: str) -> None:
        self._env_path = Path(env_path)
        self._memory: dict[str, Memory] = {}
        self._notes: dict[str, str] = {}
        where = self._read()[1]
        saved = read_status(where, steps=0)
        for pool, entry in saved.pools.items():
            hold = entry.get("hold")
            self._memory[pool] = Memory(
                entry.get("last_target"),
                None if hold is None else tuple(hold),
                entry.get("idle_since"),
            )
            self._notes[pool] = entry.get("note") or ""
        self._turn = asyncio.Lock()  # one look at a time: `look` calls and the loop's
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def look(self) -> list[dict[str, Any]]:
        """One look now (the CLI's `autopilot on`, tests); the steps it took."""
        return await self._look()

    async def _loop(self) -> None:
        while True:
            try:
                await self._look()
            except Exception:  # a bad look must not end the autopilot: try again next tick
                _log.exception("the autopilot's look failed")
            await asyncio.sleep(TICK_SECONDS)

    def _read(self) -> tuple[Settings, Where]:
        settings = Settings.from_envfile(EnvFile.read(self._env_path))
        return settings, Where.of(settings, self._env_path.parent)

    async def _look(self) -> list[dict[str, Any]]:
        async with self._turn:
            return await self._look_once()

    async def _look_once(self) -> list[dict[str, Any]]:
        settings, where = await asyncio.to_thread(self._read)
        now = time.time()
        if settings.autopilot != "on":
            await asyncio.to_thread(self._save, where, False, now)
            return []
        states = {pool: await _pool_state(pool) for pool in POOLS}
        backlog = await asyncio.to_thread(LedgerReader(where.ledger).backlog)
        fits = await asyncio.to_thread(_fits_more, settings)
        taken = []
        for pool in POOLS:
            state = states[pool]
            if state is None:
                continue
            look = _look_of(pool, state, states, settings, backlog[pool], fits.get(pool))
            step, self._memory[pool] = decide(
                look, _limits(settings, pool), self._memory.get(pool, Memory()), now
            )
            if step is not None:
                done = await self._take(step, where, now)
                if done is not None:
                    taken.append(done)
        await asyncio.to_thread(self._save, where, True, now)
        return taken

    async def _take(self, step: Step, where: Where, now: float) -> dict[str, Any] | None:
        """Log a note once; for a resize: the .env first, then the pool."""
        if step.size is None:
            if self._notes.get(step.pool) == step.reason:
                return None
            self._notes[step.pool] = step.reason
            return await asyncio.to_thread(self._log_step, where, step, now)
        key = size_key(step.pool)
        try:
            await asyncio.to_thread(
                set_env_values, EnvFile.read(self._env_path), {key: str(step.size)}
            )
        except (EnvEditRefused, OSError, ValueError) as error:
            failed = Step(step.pool, step.size_from, None, f"{key} not written: {error}")
            self._memory[step.pool] = Memory(step.size_from)  # try again next look
            return await self._take(failed, where, now)
        await ray.get_actor(supervisor_name(step.pool)).resize.remote(step.size)
        self._notes[step.pool] = step.reason
        return await asyncio.to_thread(self._log_step, where, step, now)

    def _log_step(self, where: Where, step: Step, now: float) -> dict[str, Any]:
        line = {"at": now, "pool": step.pool, "from": step.size_from, "to": step.size,
                "reason": step.reason}  # fmt: skip
        if step.size is None:
            _log.warning("autopilot: %s: %s", step.pool, step.reason)
        else:
            _log.warning("autopilot: %s %d -> %d: %s", step.pool, step.size_from, step.size,
                         step.reason)  # fmt: skip
        append_line(log_path(where), json.dumps(line))
        return line

    def _save(self, where: Where, enabled: bool, now: float) -> None:
        pools = {
            pool: {**asdict(memory), "note": self._notes.get(pool, "")}
            for pool, memory in self._memory.items()
        }
        write_atomically(
            state_path(where), json.dumps({"enabled": enabled, "looked_at": now, "pools": pools})
        )


def _limits(settings: Settings, pool: str) -> Limits:
    return Limits(
        minimum=getattr(settings, f"autopilot_{pool}_min"),
        maximum=getattr(settings, f"autopilot_{pool}_max"),
        gpu_budget=settings.autopilot_gpu_budget,
        idle_seconds=settings.autopilot_idle_seconds,
    )


def _look_of(
    pool: str,
    state: PoolState,
    states: dict[str, PoolState | None],
    settings: Settings,
    backlog: PoolBacklog,
    fits_more: int | None,
) -> Look:
    share = {name: pool_spec(settings, name).num_gpus for name in POOLS}
    others = sum(
        other.target * share[name]
        for name, other in states.items()
        if name != pool and other is not None
    )
    return Look(
        pool=pool,
        target=state.target,
        pending=state.pending,
        busy=sum(1 for member in state.members if member.in_flight),
        slots=state.slots,
        share=share[pool],
        queued=backlog.queued,
        running=backlog.running,
        batches=backlog.batches,
        fits_more=fits_more,
        others_gpus=others,
    )


async def _pool_state(pool: str) -> PoolState | None:
    try:
        supervisor = ray.get_actor(supervisor_name(pool))
    except ValueError:
        return None
    return await supervisor.status.remote()


def _fits_more(settings: Settings) -> dict[str, int | None]:
    """Per pool, how many more actors the cluster could place now (the dashboard's view);
    unknown when the dashboard does not answer (the pending rule still stops overshooting)."""
    url = default_dashboard_url(None, settings.dashboard_url, settings.ray_dashboard_port)
    client = DashboardClient(url, token=load_token())
    try:
        view = read_view(client, settings)
    except Exception as error:  # an unreachable or odd dashboard: grow by the pending rule
        _log.warning("autopilot: the dashboard did not answer: %s", error)
        return {}
    finally:
        client.close()
    return {pool.name: pool.fits_more for pool in view.pools}


# The driver's side

_Autopilot = ray.remote(Autopilot)


def start(settings: Settings, env_path: Path) -> ActorHandle:
    """The namespace's autopilot, started if need be (detached: it outlives this process)."""
    return _Autopilot.options(
        name=AUTOPILOT_NAME,
        namespace=settings.namespace,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        max_restarts=-1,
    ).remote(str(env_path.resolve()))


def stop() -> bool:
    """End the autopilot; False if it was not running."""
    with contextlib.suppress(ValueError):
        ray.kill(ray.get_actor(AUTOPILOT_NAME), no_restart=True)
        return True
    return False
