"""One formatter for each kind of figure and text the CLI and the panel print.

Durations, rates and counts read the same everywhere; a number is never cut (it is abbreviated
by rule: 1.2k, 12k, 3.4M); ids and paths that must shorten lose their middle and keep their end
(that is what tells them apart); and text that comes from outside (file names, keys, values,
actor names, Ray's and OpenRAG's messages) is made safe for a terminal: control characters
become visible escapes, so no name can move the cursor, recolour the screen or retitle the window.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

ELLIPSIS = "…"
DASH = "–"
# C0 and C1 controls, DEL, and the invisible characters that reorder text (Trojan Source)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def safe(text: object) -> str:
    """`text` with every control character shown as an escape (`\\x1b`, `\\n`): one line,
    inert on any terminal."""
    return _UNSAFE.sub(_escape, str(text))


def safe_lines(text: object) -> str:
    """Each line made safe, the line breaks kept (for text meant to span lines)."""
    return "\n".join(safe(line) for line in str(text).split("\n"))


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def duration(seconds: float | None) -> str:
    """`45s`, `3m05s`, `2h05m`, `3d04h`; `–` when unknown."""
    if seconds is None:
        return DASH
    whole = max(0, round(seconds))
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def rate(value: float | None) -> str:
    """Per second, to one decimal below 100 and abbreviated above: `12.3`, `450`, `1.2k`."""
    if value is None:
        return DASH
    if value < 100:
        return f"{value:.1f}"
    return count(round(value))


def count(value: int) -> str:
    """A whole number in at most 4 characters (5 with a sign): 999, 1.2k, 12k, 123k, 1.2M."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 1000:
        return f"{sign}{value}"
    for unit, size in (("k", 10**3), ("M", 10**6), ("G", 10**9), ("T", 10**12)):
        scaled = value / size
        if scaled < 9.95:
            return f"{sign}{scaled:.1f}{unit}"
        if scaled < 999.5:
            return f"{sign}{scaled:.0f}{unit}"
    return f"{sign}{value / 10**15:.0f}P"


def fraction(done: int, total: int) -> str:
    """`40/310`, abbreviated by the same rule as `count` once the numbers grow: `1.2k/3.4k`."""
    return f"{count(done)}/{count(total)}"


def shorten_middle(text: str, width: int, tail: int | None = None) -> str:
    """`text` in at most `width` characters: the start and the end kept, the middle dropped.

    The end tells ids and paths apart, so it keeps two thirds of the room (or `tail`)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return ELLIPSIS
    kept = (width - 1) * 2 // 3 if tail is None else min(tail, width - 1)
    head = width - 1 - kept
    return text[:head] + ELLIPSIS + text[len(text) - kept :]


def plain(text: object, style: str = "") -> Text:
    """Outside text as a rich Text: shown as it is, no markup parsed, no terminal escapes."""
    from rich.text import Text

    return Text(safe(text), style=style)
