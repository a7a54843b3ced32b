"""`openrag-tui plan`: the pools sized from GPU memory, and with `--apply` written and applied.

The memory of one actor is measured on this cluster (NVML, through the dashboard) or given;
the memory of each GPU likewise (`--gpu-gb` where NVML reports none). `--apply` writes the
recommended values into the shared .env (validated, atomic, as every edit) and gives the
deployed pools their new spec: actors of another GPU share are replaced, each drained first.
Exit codes: 0 planned (and applied), 1 applied but not every actor placed in time, 2 a figure
is missing or the .env refused the edit (nothing written), 3 the cluster is unreachable.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from openrag_tui.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Output,
    ReadOnly,
    UsageError,
    address_option,
    common_options,
    connected,
    json_option,
    jsonl_option,
    open_workspace_of,
    positive_float,
)

if TYPE_CHECKING:
    from openrag_tui.cluster.planner import PoolPlan
    from openrag_tui.workspace import Workspace


def register(commands: argparse._SubParsersAction) -> None:
    plan = commands.add_parser(
        "plan", help="recommend pool sizes and GPU shares from GPU memory (--apply: set them)"
    )
    figures = (
        ("--indexer-gb", "GPU memory of one indexer actor (default: measured by NVML)"),
        ("--marker-gb", "GPU memory of one marker actor (default: measured by NVML)"),
        ("--gpu-gb", "memory of each GPU where NVML reports none"),
    )
    for flag, words in figures:
        plan.add_argument(flag, type=positive_float, metavar="G", help=words)
    plan.add_argument(
        "--reserve-gb", type=non_negative_float, default=0.0, metavar="G",
        help="GPU memory to keep free on each GPU (vLLM, the RAG API), besides what NVML "
        "sees used there",
    )  # fmt: skip
    plan.add_argument(
        "--apply", action="store_true", help="write the .env and resize the deployed pools"
    )
    plan.add_argument(
        "--timeout", type=positive_float, default=60.0, metavar="S",
        help="with --apply, wait at most S seconds for the actors",
    )  # fmt: skip
    common_options(plan)
    address_option(plan)
    json_option(plan)
    jsonl_option(plan)
    plan.set_defaults(handler=run_plan)


def non_negative_float(text: str) -> float:
    """An argparse type: a number of 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of 0 or more: {text!r}")
    return value


def run_plan(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.cluster.planner import Given

    if args.apply and getattr(args, "read_only", False):
        raise ReadOnly("--read-only: `openrag-tui plan --apply` would change something: refused")
    workspace = open_workspace_of(args)
    given = Given(args.indexer_gb, args.marker_gb, args.gpu_gb, args.reserve_gb)
    plan = make_plan(workspace, given)
    payload = plan_dict(plan)
    payload["env"] = str(workspace.location.path)
    out.event("plan", **payload)
    _print_plan(out, plan)
    code = EXIT_OK
    if args.apply:
        applied, code = _apply(args, out, workspace, plan)
        payload["applied"] = applied
    else:
        payload["applied"] = None
        if plan.changes:
            out.say("Apply it with the same command and --apply.")
    if out.json_mode:
        out.json(payload)
    out.event("result", **payload)
    return code


def make_plan(workspace: Workspace, given: Any) -> PoolPlan:
    """The plan from the cluster as the dashboard shows it now (one look, no history)."""
    from openrag_tui.cluster.planner import measured_memory, plan_pools
    from openrag_tui.cluster.refresh import read_view
    from openrag_tui.config.pools import POOLS, pool_spec

    client = workspace.client()
    try:
        view = read_view(client, workspace.settings)
    finally:
        client.close()
    specs = {pool: pool_spec(workspace.settings, pool) for pool in POOLS}
    measured = {pool: measured_memory(view.gpu_memory, pool) for pool in POOLS}
    return plan_pools(view.state, specs, given, measured)


def plan_dict(plan: PoolPlan) -> dict[str, Any]:
    """`plan --json`: the values as they would be written, and why."""
    return {
        "recommended": dict(plan.recommended),
        "current": dict(plan.current),
        "changes": plan.changes,
        "reasons": list(plan.reasons),
        "notes": list(plan.notes),
        "fit": {
            pool: {"size": fit.size, "run": fit.run, "wait": fit.wait}
            for pool, fit in plan.fit.items()
        },
        "memory_gb": {
            pool: {"gb": None if m.mib is None else round(m.mib / 1024, 3), "source": m.source}
            for pool, m in plan.memory.items()
        },
        "gpus": [
            {
                "node_id": gpu.node_id,
                "node": gpu.node,
                "index": gpu.index,
                "memory_gb": round(gpu.memory_mib / 1024, 3),
                "memory_source": gpu.memory_source,
                "outside_gb": round(gpu.outside_mib / 1024, 3),
                "reserve_gb": round(gpu.reserve_mib / 1024, 3),
                "markers": gpu.markers,
                "indexers": gpu.indexers,
            }
            for gpu in plan.gpus
        ],
    }


def _print_plan(out: Output, plan: PoolPlan) -> None:
    nodes = len({gpu.node_id for gpu in plan.gpus})
    out.say(f"Plan for {len(plan.gpus)} GPU(s) on {nodes} node(s):")
    for line in plan.reasons:
        key, _, rest = line.partition("=")
        value, _, why = rest.partition(": ")
        was = plan.current.get(key)
        change = f"{was} -> {value.split(' ')[0]}" if was != value.split(" ")[0] else was
        out.say(f"  {key:<17} {change:<14} {why}")
    fit = " · ".join(
        f"{pool} {f.run} of {f.size} run now" + (f", {f.wait} would wait" if f.wait else "")
        for pool, f in plan.fit.items()
    )
    out.say(f"Fit: {fit}")
    for note in plan.notes:
        out.say(f"  note: {note}")


def _apply(
    args: argparse.Namespace, out: Output, workspace: Workspace, plan: PoolPlan
) -> tuple[dict[str, Any], int]:
    """Write the changes and give the deployed pools their new spec; (what was done, code)."""
    from openrag_tui.config import EnvEditRefused, EnvFile, Settings, set_env_values
    from openrag_tui.pools import control

    path = workspace.location.path
    with connected(workspace, args.address):  # unreachable: nothing written
        if plan.changes:
            try:
                env = set_env_values(EnvFile.read(path), plan.changes)
            except EnvEditRefused as refused:
                problems = "; ".join(p.message for p in refused.problems) or str(refused)
                raise UsageError(f"{path} left unchanged: {problems}") from None
            out.say(f"{', '.join(f'{k}={v}' for k, v in plan.changes.items())} written to {path}")
        else:
            env = EnvFile.read(path)
            out.say(f"{path} already holds these values")
        states = control.reapply(Settings.from_envfile(env))
        results = {}
        for pool, state in states.items():
            if state is None:
                out.say(f"{pool}: not deployed (its .env values apply when it is)")
                results[pool] = None
                continue
            result = control.wait_for(pool, state.target, timeout=args.timeout)
            counts = result.state
            out.say(
                f"{pool}: {counts.alive} alive, {counts.pending} pending, {counts.retiring} "
                f"retiring (target {counts.target}): {result.outcome}"
            )
            out.event("progress", pool=pool, target=counts.target, alive=counts.alive,
                      pending=counts.pending, retiring=counts.retiring)  # fmt: skip
            results[pool] = {"target": counts.target, "alive": counts.alive,
                             "pending": counts.pending, "outcome": result.outcome}  # fmt: skip
    reached = all(r is None or r["outcome"] == "reached" for r in results.values())
    return {"written": plan.changes, "pools": results}, EXIT_OK if reached else EXIT_FAILED
