"""How the coordinator shares pool tasks among queued files: small files in groups spread over
the free slots, a PDF for marker alone, never more tasks than free slots."""

from __future__ import annotations

from openrag_tui.indexing.batch import FileState, FileTask
from openrag_tui.indexing.coordinator import groups


def queued(*names: str) -> list[FileTask]:
    return [FileTask("b", n, name, FileState.QUEUED) for n, name in enumerate(names)]


def names(found: list[list[FileTask]]) -> list[list[str]]:
    return [[task.path for task in group] for group in found]


def to_marker(task: FileTask) -> bool:
    return task.path.endswith(".pdf")


def test_a_deep_queue_fills_every_free_slot_with_a_full_group() -> None:
    tasks = queued(*(f"{n}.txt" for n in range(40)))
    found = groups(tasks, free=3, size=8, to_marker=to_marker)
    assert [len(group) for group in found] == [8, 8, 8]
    assert names(found)[0] == [f"{n}.txt" for n in range(8)]  # in order


def test_a_short_queue_is_spread_over_the_free_slots() -> None:
    """The end of a batch: five files over four free slots, not one group of five."""
    found = groups(queued(*(f"{n}.txt" for n in range(5))), free=4, size=8, to_marker=to_marker)
    assert [len(group) for group in found] == [2, 2, 1]


def test_files_go_one_by_one_while_their_pace_is_unknown() -> None:
    found = groups(queued("a.txt", "b.txt", "c.txt"), free=10, size=1, to_marker=to_marker)
    assert names(found) == [["a.txt"], ["b.txt"], ["c.txt"]]


def test_a_pdf_for_marker_is_a_task_of_its_own_and_counts_as_one() -> None:
    found = groups(
        queued("a.txt", "x.pdf", "b.txt", "c.txt", "y.pdf", "d.txt"),
        free=3, size=2, to_marker=to_marker,
    )  # fmt: skip
    assert names(found) == [["x.pdf"], ["a.txt", "b.txt"], ["c.txt"]]
    assert len(found) == 3


def test_nothing_starts_without_a_free_slot() -> None:
    assert groups(queued("a.txt", "x.pdf"), free=0, size=8, to_marker=to_marker) == []
