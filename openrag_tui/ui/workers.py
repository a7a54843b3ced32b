"""One guard for the panel's one-at-a-time jobs: the poll, the batches read, the .env watch.

Each runs a blocking call in a thread; a timer may ask for the next run while the last is still
out (a hung network mount, a slow dashboard), and starting another would pile up threads. A job
is started only when the last one was released: when its thread returned, or, for the poll,
when its result was handled (so a result in the message queue still counts as in flight).
"""

from __future__ import annotations

from collections.abc import Callable

from textual.dom import DOMNode


class OneAtATime:
    """Start a thread job unless the last one is still out."""

    def __init__(self, group: str, release_on_return: bool = True) -> None:
        self.group = group
        self.release_on_return = release_on_return
        self.busy = False

    def start(self, node: DOMNode, job: Callable[[], object]) -> bool:
        """Run `job` in a thread worker of `node`; False (nothing started) while one is out."""
        if self.busy:
            return False
        self.busy = True

        def run() -> None:
            try:
                job()
            except BaseException:
                self.busy = False
                raise
            if self.release_on_return:
                self.busy = False

        node.run_worker(run, thread=True, exit_on_error=False, group=self.group)
        return True

    def release(self) -> None:
        """The job's result was handled: the next one may start."""
        self.busy = False
