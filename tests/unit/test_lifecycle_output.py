"""Ray's output made fit for a log pane, `ray up`'s steps, one-sentence reasons, process rows."""

from __future__ import annotations

import pytest

from openrag_tui.cluster.processes import RayProcess, summarize_command
from openrag_tui.cluster.raylog import clean_line, failure_reason, step_marker


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[32mRay runtime started.\x1b[39m\n", "Ray runtime started."),
        ("  \x1b[1m  ray stop\x1b[22m\x1b[26m\r\n", "    ray stop"),
        (
            "\x1b[0mShared connection to 127.0.0.1 closed.\r",
            "Shared connection to 127.0.0.1 closed.",
        ),
        ("2026-11-27 09:39:22,418\tINFO commands.py:342 -- Cluster: rag", "Cluster: rag"),
        ("2026-11-27 09:39:35,319\tWARN commands.py:394 -- Try again.", "warning: Try again."),
        ("2026-11-27 09:39:35,319\tVWARN commands.py:388 -- Cached.", "warning: Cached."),
        ("2026-11-27 09:40:08,053\tPANIC commands.py:925 -- Failed.", "error: Failed."),
        (
            "[2026-11-27 09:38:16,926 W 44 44] rpc_client.h:153: Failed",
            "[2026-11-27 09:38:16,926 W 44 44] rpc_client.h:153: Failed",
        ),
        ("tab\tkept, bell\x07 gone", "tab\tkept, bell gone"),
    ],
)
def test_lines_lose_colours_control_characters_and_the_record_prefix(raw: str, clean: str) -> None:
    assert clean_line(raw) == clean


@pytest.mark.parametrize(
    ("line", "marker"),
    [
        ("[1/7] Waiting for SSH to become available", "[1/7] Waiting for SSH to become available"),
        ("[7/7] Starting the Ray runtime", "[7/7] Starting the Ray runtime"),
        ("<1/1> Setting up head node", None),
        ("[9/7] not a step", None),
        ("Running `uptime` as a test.", None),
    ],
)
def test_ray_up_steps_are_read_from_its_markers(line: str, marker: str | None) -> None:
    assert step_marker(line) == marker


def test_the_reason_is_clicks_error_line_with_a_hint_for_unreachable_ssh() -> None:
    tail = [
        '  File "updater.py", line 291, in wait_ready',
        '    raise Exception("wait_ready timeout exceeded.")',
        "Exception: wait_ready timeout exceeded.",
        "error: Failed to setup head node.",
        "Error: Failed to setup head node.",
    ]
    assert failure_reason(tail) == (
        "Failed to setup head node; "
        "SSH to the head did not answer within AUTOSCALER_NODE_START_WAIT_S"
    )


def test_without_an_error_line_the_reason_is_the_last_exception_then_the_last_line() -> None:
    traceback = ["Traceback (most recent call last):", "RuntimeError: Failed to start GCS.  Last 1"]
    assert failure_reason([*traceback, "", "  more detail"]) == "Failed to start GCS.  Last 1"
    assert failure_reason(["starting", "error: it broke.", ""]) == "it broke"
    assert failure_reason(["", " "]) is None


def test_a_process_row_fits_80_columns() -> None:
    args = [
        "/venv/bin/python3", "-u", "/venv/lib/ray/_private/log_monitor.py",
        "--session-dir=/tmp/ray/session_2026-11-27_09-43-49_870916_3", "--logs-dir=/tmp/x",
    ]  # fmt: skip
    command = summarize_command(args)
    assert command.startswith("python3 -u log_monitor.py --session-dir=/")
    assert command.endswith("…") and len(command) == 42
    row = str(RayProcess(4242, "python3", command))
    assert row.startswith("   4242  python3          python3 -u") and len(row) <= 68  # the box
    assert summarize_command(["ray::DashboardAgent", "", "   "]) == "ray::DashboardAgent"
    assert str(RayProcess(7, "ray::RuntimeEnvAgent", "x")) == "      7  ray::RuntimeEnvA x"
