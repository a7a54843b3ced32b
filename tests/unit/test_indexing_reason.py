"""A failed file's reason is the loader's sentence, however many Ray hops it travelled."""

from __future__ import annotations

from ray.exceptions import RayTaskError

from openrag_tui.indexing.coordinator import plain_reason
from openrag_tui.indexing.loaders import DocumentError


def test_nested_ray_errors_unwrap_to_the_loaders_words() -> None:
    worker = RayTaskError("run", "Traceback (most recent call last):\n  ...", DocumentError(
        "encrypted PDF: it needs a password"))  # fmt: skip
    supervisor = RayTaskError("PoolSupervisor.run", "Traceback:\n  ...", worker)
    assert plain_reason(supervisor) == "encrypted PDF: it needs a password"


def test_other_errors_keep_their_type_and_first_line() -> None:
    error = RayTaskError("run", "Traceback:\n  ...", ValueError("bad input\nsecond line"))
    assert plain_reason(error) == "ValueError: bad input"


def test_a_traceback_only_error_gives_its_last_line() -> None:
    """What Ray hands over when the original exception did not travel with it."""
    traceback = (
        'ray::PoolSupervisor.run() (pid=479)\n  File "x.py", line 1, in run\n'
        "openrag_tui.indexing.loaders.base.DocumentError: empty file (0 bytes)\n"
    )
    assert plain_reason(RayTaskError("run", traceback, None)) == "empty file (0 bytes)"
