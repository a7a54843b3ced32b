"""What Ray's command-line tools print, made fit for a log pane: plain lines, steps, a reason.

Pure text functions: `ray start/stop/up/down` output goes through `clean_line` before anyone sees
it, `ray up`'s "[k/7] ..." markers become the run's current step, and `failure_reason` turns
the tail of a failed run into one sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# CSI sequences (colours, cursor moves) and the two-byte escapes; Ray's remote `ray start` output
# keeps its colours even when the local side asks for none.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# `--log-style record`: "2026-11-27 09:39:22,418<TAB>INFO commands.py:342 -- Cluster: x"
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\s+(?P<level>[A-Z]+) \S+:\d+ -- ")
_STEP = re.compile(r"\[(?P<index>\d+)/(?P<count>\d+)\] (?P<title>.+)")
_CLICK_ERROR = re.compile(r"^Error: (?P<text>.+)")
_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(?P<kind>\w*(?:Error|Exception)): (?P<text>.+)")
_HINTS = (
    (
        "wait_ready timeout exceeded",
        "SSH to the head did not answer within AUTOSCALER_NODE_START_WAIT_S",
    ),
)


def clean_line(raw: str) -> str:
    """One output line without colour codes, control characters or the record-style prefix.

    Warnings and errors keep their level as a word, so the pane still says what they are.
    """
    line = _CONTROL.sub("", _ANSI.sub("", raw)).rstrip()
    record = _RECORD.match(line)
    if record is None:
        return line
    text = line[record.end() :]
    level = record["level"]
    if "WARN" in level:
        return f"warning: {text}"
    if "ERR" in level or "PANIC" in level:
        return f"error: {text}"
    return text


def step_marker(line: str) -> str | None:
    """`ray up`'s progress marker in a clean line ("[3/7] No worker file mounts to sync")."""
    found = _STEP.search(line)
    if found is None or int(found["index"]) > int(found["count"]):
        return None
    return f"[{found['index']}/{found['count']}] {found['title']}"


def failure_reason(lines: Sequence[str]) -> str | None:
    """Why a Ray command failed, from its clean output: click's last `Error:` line, else the
    last exception line, else the last line; with a hint when the cause is a known one."""
    reason = _last_match(lines, _CLICK_ERROR) or _last_match(lines, _EXCEPTION)
    if reason is None:
        reason = next((line.strip() for line in reversed(lines) if line.strip()), None)
    if reason is None:
        return None
    reason = reason.removeprefix("error: ").rstrip(".")
    text = "\n".join(lines)
    hints = [hint for marker, hint in _HINTS if marker in text and hint not in reason]
    return "; ".join([reason, *hints])


def _last_match(lines: Sequence[str], pattern: re.Pattern[str]) -> str | None:
    for line in reversed(lines):
        found = pattern.match(line.strip())
        if found:
            return found["text"]
    return None
