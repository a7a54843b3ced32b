"""A start/stop run's mechanics against a stand-in `ray` script: lines as they arrive, the step,
cancel and timeout ending the whole process group, and success judged by the dashboard."""

from __future__ import annotations

import re
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from openrag_tui.cluster.dashboard import DashboardClient
from openrag_tui.cluster.lifecycle import (
    RAY_MISSING,
    ClusterRun,
    Outcome,
    Result,
    Timeouts,
    start_run,
    stop_run,
)
from openrag_tui.cluster.targets import ClusterFile, LocalHead
from openrag_tui.config import Settings
from tests.support.raycluster import free_port, wait_until
from tests.support.recorded import RecordedDashboard


def calls(fake_ray: Path) -> list[str]:
    log = fake_ray.parent / "calls"
    return log.read_text().splitlines() if log.exists() else []


def nobody() -> DashboardClient:
    """A dashboard URL where nothing listens: refused at once."""
    return DashboardClient(f"http://127.0.0.1:{free_port()}")


def make(
    tmp_path: Path,
    mode: str,
    action: Callable[..., ClusterRun] = start_run,
    target: LocalHead | ClusterFile | None = None,
    client: DashboardClient | None = None,
    **timeouts: float,
) -> ClusterRun:
    settings = Settings.from_values({"FAKE_RAY": mode, "RAY_POOL_SIZE": "3"})
    target = target or ClusterFile(tmp_path / "cluster.yaml", "rag", ssh_wait_s=7)
    limits = Timeouts(**{"dashboard": 0.5, **timeouts})
    return action(target, settings, tmp_path / ".env", client or nobody(), timeouts=limits)


def test_lines_stream_clean_with_the_step_and_success_is_the_dashboards_word(
    tmp_path: Path, fake_ray: Path
) -> None:
    run = make(tmp_path, "ok")
    seen = [(line, run.step) for line in run]
    lines = [line for line, _ in seen]
    config = tmp_path / "cluster.yaml"
    assert (
        lines[0] == f"$ ray up -y --no-config-cache --log-style record --log-color false {config}"
    )
    assert lines[1:4] == [
        "env POOL=3 WAIT=7",  # the .env, and a bounded SSH wait
        "[1/7] Waiting for SSH to become available",
        "Ray runtime started.",
    ]
    assert ("Ray runtime started.", "ray up [1/7] Waiting for SSH to become available") in seen
    assert run.result is not None and run.result.outcome is Outcome.UNREACHABLE
    assert run.result.message == (
        f"ray up finished but the dashboard at {run._client.base_url} did not answer within "
        "0.5 s (set OPENRAG_TUI_DASHBOARD_URL if it listens elsewhere)."
    )
    assert run.step == "Done" and 0 < run.elapsed < 10


def test_a_failed_command_ends_with_one_sentence_from_its_output(
    tmp_path: Path, fake_ray: Path
) -> None:
    run = make(tmp_path, "fail")
    list(run)
    assert run.result is not None and run.result.outcome is Outcome.FAILED
    assert run.result.message == (
        "ray up failed (exit 1): Failed to setup head node; "
        "SSH to the head did not answer within AUTOSCALER_NODE_START_WAIT_S."
    )


def _grandchild(line: str) -> int:
    return int(line.split()[1])


def test_cancel_from_another_thread_ends_the_whole_process_group(
    tmp_path: Path, fake_ray: Path
) -> None:
    run = make(tmp_path, "hang")
    lines = iter(run)
    grandchild = _grandchild(next(line for line in lines if line.startswith("grandchild")))
    assert psutil.pid_exists(grandchild)  # the line arrived while the command still ran
    threading.Thread(target=run.cancel).start()
    assert list(lines) == []
    assert run.result is not None and run.result.outcome is Outcome.CANCELLED
    assert re.fullmatch(
        r"Cancelled after \d+ s during ray up \[1/7\] Waiting for SSH to become available; "
        r"stop the cluster to clean up anything it left\.",
        run.result.message,
    )
    wait_until(lambda: not _running(grandchild), 5, "the grandchild to end with its group")


def test_a_step_past_its_timeout_is_stopped_and_fails(tmp_path: Path, fake_ray: Path) -> None:
    target = ClusterFile(tmp_path / "cluster.yaml", "rag", ssh_wait_s=0.5)
    run = make(tmp_path, "hang", target=target, ray_up=1)
    lines = list(run)
    grandchild = _grandchild(next(line for line in lines if line.startswith("grandchild")))
    assert run.result == Result(
        Outcome.FAILED, "ray up did not finish within 1.5 s and was stopped."
    )
    assert 1.5 <= run.elapsed < 10
    wait_until(lambda: not _running(grandchild), 5, "the grandchild to end with its group")


def test_ray_down_exiting_0_is_no_success_while_the_dashboard_still_answers(
    tmp_path: Path, fake_ray: Path
) -> None:
    run = make(tmp_path, "ok", action=stop_run, client=RecordedDashboard())
    list(run)
    assert run.result == Result(
        Outcome.FAILED,
        "ray down finished but http://127.0.0.1:8265 still answers: Ray may still run on the head.",
    )
    gone = make(tmp_path, "ok", action=stop_run)
    list(gone)
    assert gone.result is not None and gone.result.ok
    assert gone.result.message.startswith("The cluster is down: nothing answers at http://")
    assert [call.split()[0] for call in calls(fake_ray)] == ["down", "down"]


def test_nothing_runs_when_a_cluster_already_answers_or_a_port_is_taken(
    tmp_path: Path, fake_ray: Path
) -> None:
    up = make(tmp_path, "ok", client=RecordedDashboard())
    assert list(up) == []
    assert up.result == Result(
        Outcome.OK, "A Ray cluster already answers at http://127.0.0.1:8265: nothing to start."
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        head = LocalHead(port=port, dashboard_host="127.0.0.1", dashboard_port=free_port())
        run = make(tmp_path, "ok", target=head)
        assert list(run) == []
    assert run.result == Result(
        Outcome.FAILED,
        f"Port {port} (RAY_HEAD_ADDRESS) is already in use on this machine: "
        "stop what listens there or choose another port in the .env.",
    )
    assert calls(fake_ray) == []


def test_a_missing_ray_is_a_clear_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    run = make(tmp_path, "ok")
    assert list(run) == []
    assert run.result == Result(Outcome.FAILED, RAY_MISSING)


def test_a_run_runs_once(tmp_path: Path, fake_ray: Path) -> None:
    run = make(tmp_path, "ok", client=RecordedDashboard())
    list(run)
    with pytest.raises(RuntimeError, match="runs once"):
        list(run)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
