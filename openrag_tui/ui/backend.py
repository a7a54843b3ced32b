"""The one façade the UI calls. Every method blocks, so screens call it from thread workers only.

It holds the workspace the panel works on, reads the cluster for it (remembering the last state,
so a refresh can tell what changed since), and runs our own CLI as child processes for anything
that joins the cluster as a Ray driver: Ray's C++ core writes to the process's terminal, which
the panel draws on.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from openrag_tui.config.pools import POOLS

if TYPE_CHECKING:  # the rest loads when first used: the panel draws before it needs them
    from openrag_tui.cluster.allocation import ClusterView
    from openrag_tui.cluster.dashboard import DashboardClient
    from openrag_tui.cluster.history import History
    from openrag_tui.cluster.lifecycle import ClusterRun
    from openrag_tui.cluster.logs import LogLine, LogTail, Selection, StreamEnded
    from openrag_tui.cluster.processes import ProcessStream, RayProcess
    from openrag_tui.cluster.state import Actor, ClusterState
    from openrag_tui.cluster.targets import Target
    from openrag_tui.indexing.autopilot_log import AutopilotStatus
    from openrag_tui.indexing.batch import BatchProgress, FileTask
    from openrag_tui.indexing.openrag.queue import OpenRagQueue
    from openrag_tui.indexing.paths import Where
    from openrag_tui.indexing.search import Results
    from openrag_tui.indexing.vectorstatus import VectorStoreStatus
    from openrag_tui.workspace import Workspace

ClientFactory = Callable[["Workspace"], "DashboardClient"]
_log = logging.getLogger(__name__)


def child_events(
    stream: ProcessStream, timeout: float, stop: threading.Event
) -> Iterator[dict[str, Any]]:
    """The JSON-line events of a child `openrag-tui … --jsonl` (its other lines are Ray's or a
    crash's: skipped). StreamTimeout / StreamCancelled as `ProcessStream.lines` raises them."""
    for line in stream.lines(time.monotonic() + timeout, stop):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "event" in event:
            yield event


class Backend:
    """Holds the workspace the panel works on and reads the cluster for it."""

    def __init__(
        self,
        workspace: Workspace,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.workspace = workspace
        self.clock = clock
        self._client_factory = client_factory or (lambda ws: ws.client())
        self._client: DashboardClient | None = None
        self._previous: ClusterState | None = None
        self._history: History | None = None
        self._logs: DashboardClient | None = None
        self._lock = threading.Lock()  # the poll thread and a reloading thread share the client

    @property
    def history(self) -> History:
        """The last minutes of the cluster's figures, kept from the first poll on."""
        with self._lock:
            if self._history is None:
                from openrag_tui.cluster.history import History

                self._history = History(self.workspace.settings.history_minutes)
            return self._history

    @property
    def dashboard_url(self) -> str:
        """The dashboard's URL as the screens show it (credentials masked)."""
        return self.workspace.dashboard_display

    def read_view(self) -> tuple[ClusterView, str | None]:
        """One refresh, and a sentence about the pool actors that died since the last one (the
        view's warnings keep naming every dead one Ray still lists); raises DashboardError when
        the dashboard does not answer."""
        with self._lock:
            if self._client is None:
                self._client = self._client_factory(self.workspace)
                self._client.prefetch()  # the dashboard answers while the modules below load
            client, settings, previous = self._client, self.workspace.settings, self._previous
        from openrag_tui.cluster.refresh import read_view
        from openrag_tui.cluster.warnings import death_sentence, deaths

        view = read_view(client, settings, clock=self.clock)
        self._previous = view.state
        self.took_view(view)
        died = [] if previous is None else deaths(view.state, previous)
        return view, death_sentence(died, since_last=True) if died else None

    def took_view(self, view: ClusterView) -> None:
        """A new view, in the poll's thread: into the history, and the tables' figures made
        (`cluster_tables.prepare`) so that the UI's update only compares and draws."""
        from openrag_tui.ui.widgets.cluster_tables import prepare

        history = self.history
        history.record_cluster(view, view.gpu_memory, view.state.fetched_at)
        prepare(view, history)

    def reload_workspace(self) -> Workspace:
        """Read the .env again (edited here or elsewhere); the dashboard URL may change, so the
        next poll gets a new client (a poll in flight finishes with the old one)."""
        workspace = self.workspace.reloaded()
        minutes = workspace.settings.history_minutes
        with self._lock:
            if self._history is not None and minutes != self._history.minutes:
                self._history = None  # a new window: the samples of the old one go
            logs_client = self._logs
            self.workspace, self._client, self._logs = workspace, None, None
        if logs_client is not None:  # a follow in flight keeps its own session
            logs_client.close()
        return workspace

    def env_changed_on_disk(self) -> bool:
        """Whether someone edited (or removed) the .env since we read it."""
        return self.workspace.env.changed_on_disk()

    def cluster_target(self) -> Target:
        """What start and stop act on (cluster.yaml or a local head); raises LifecycleError."""
        from openrag_tui.cluster.targets import choose_target

        workspace = self.workspace
        return choose_target(workspace.settings, workspace.location.path.parent)

    def ray_processes(self) -> list[RayProcess]:
        """What a local `ray stop` would end on this machine."""
        from openrag_tui.cluster.processes import ray_processes

        return ray_processes()

    def cluster_answers(self) -> bool:
        """Whether a cluster already answers at the dashboard (a start would do nothing)."""
        client = self.workspace.client()
        try:
            return client.healthy()
        finally:
            client.close()

    def start_run(self, target: Target) -> ClusterRun:
        from openrag_tui.cluster.lifecycle import start_run

        workspace = self.workspace
        return start_run(target, workspace.settings, workspace.location.path, workspace.client())

    def stop_run(self, target: Target) -> ClusterRun:
        from openrag_tui.cluster.lifecycle import stop_run

        workspace = self.workspace
        return stop_run(target, workspace.settings, workspace.location.path, workspace.client())

    def cli_process(self, *args: str) -> ProcessStream:
        """Our own CLI in a child process, on this .env: Ray's driver, and whatever its C++ core
        prints, stay out of the panel's process and terminal; its JSON lines are the progress."""
        from openrag_tui.cluster.processes import ProcessStream

        workspace = self.workspace
        argv = [sys.executable, "-m", "openrag_tui", *args]
        argv += ["--env", str(workspace.location.path), "--dashboard", workspace.dashboard_url]
        return ProcessStream(argv, os.environ)

    def scale_process(self, pool: str, size: int) -> ProcessStream:
        return self.cli_process("scale", pool, str(size), "--deploy", "--jsonl")

    def plan_process(self, *args: str) -> ProcessStream:
        return self.cli_process("plan", "--apply", "--jsonl", *args)

    def autopilot_process(self, on: bool) -> ProcessStream:
        return self.cli_process("autopilot", "on" if on else "off")

    def autopilot_status(self) -> AutopilotStatus:
        """The autopilot as its files beside the ledger show it (no Ray)."""
        from openrag_tui.indexing.autopilot_log import read_status

        return read_status(self.where(), steps=1)

    def measured_memory(self, view: ClusterView) -> dict[str, float | None]:
        """Per pool, the median GPU memory of one actor over the panel's history."""
        from openrag_tui.cluster.planner import measured_memory

        samples = self.history.actor_samples(view.gpu_memory)
        return {pool: measured_memory(view.gpu_memory, pool, samples) for pool in POOLS}

    def where(self) -> Where:
        """Where this .env's data volume, ledger and outputs are."""
        from openrag_tui.indexing.paths import Where

        workspace = self.workspace
        return Where.of(workspace.settings, workspace.location.path.parent)

    def check_batch(self, path: str, partition: str | None) -> tuple[str, ...]:
        """Check a batch as `index` will (without the cluster); its notes, or the ValueError
        (BadPath, BadPartition, BadInput) that says why it would be refused."""
        from openrag_tui.indexing.plan import plan_batch

        workspace = self.workspace
        request = plan_batch(workspace.settings, self.where(), [path], partition or "check")
        return request.notes

    def vector_store(self) -> VectorStoreStatus:
        """The vector store, as fast as `status` reads it (no Milvus client)."""
        from openrag_tui.indexing.vectorstatus import vector_store_status

        workspace = self.workspace
        try:
            where = self.where()
        except ValueError:  # the ledger or outputs outside the volume: no figures
            where = None
        return vector_store_status(workspace.settings, where)

    def openrag_queue(self) -> OpenRagQueue | None:
        """OpenRAG's queue when the .env names OpenRAG or a batch went there, else None."""
        from openrag_tui.indexing.openrag.queue import openrag_queue, wanted

        workspace = self.workspace
        try:
            where = self.where()
        except ValueError:
            where = None
        if not wanted(workspace.settings, where):
            return None
        return openrag_queue(workspace.settings, where, str(workspace.location.path))

    def search(self, partition: str, query: str, top: int) -> Results:
        """Hybrid search in a partition; raises Unavailable, BadInput or EmbedderMismatch."""
        from openrag_tui.indexing.search import search

        workspace = self.workspace
        return search(workspace.settings, partition, query, top, str(workspace.location.path))

    def list_batches(self) -> list[BatchProgress]:
        from openrag_tui.indexing.ledger import LedgerReader

        return LedgerReader(self.where().ledger).batches()

    # logs: their own dashboard client, since following holds its connections open

    def _logs_client(self) -> DashboardClient:
        with self._lock:
            if self._logs is None:
                self._logs = self._client_factory(self.workspace)
            return self._logs

    def log_selection(self, name: str) -> Selection:
        """The actors NAME stands for now (LogsError when none)."""
        from openrag_tui.cluster import logs

        return logs.resolve(logs.read_state(self._logs_client()), name)

    def log_tail(self, actor: Actor, lines: int, label: str) -> LogTail:
        from openrag_tui.cluster import logs

        return logs.tail(self._logs_client(), actor, lines, label=label)

    def follow_logs(
        self,
        actors: Selection | Sequence[Actor],
        lines: int,
        stop: threading.Event,
        labels: Mapping[str, str],
    ) -> Iterator[LogLine | StreamEnded]:
        from openrag_tui.cluster import logs

        return logs.follow(self._logs_client(), actors, lines, stop, labels=labels)

    def sample_indexing(self) -> None:
        """The ledger's files and pages done so far, into the history (its files/s, pages/s);
        a ledger that does not read leaves a gap, not an error (the batches screen says why)."""
        try:
            batches = self.list_batches()
        except Exception:
            _log.warning("indexing history: the ledger did not read", exc_info=True)
            return
        self.history.record_indexing(
            sum(batch.counts.get("COMPLETED", 0) for batch in batches),  # not cancelled ones
            sum(batch.pages_done for batch in batches),
            self.clock(),
        )

    def batch_files(self, batch_id: str) -> list[FileTask]:
        from openrag_tui.indexing.ledger import LedgerReader

        return LedgerReader(self.where().ledger).files(batch_id)

    def set_env(
        self, updates: Mapping[str, str], expected: Mapping[str, str | None] | None = None
    ) -> Workspace:
        """Save through the round-trip editor; raises EnvEditRefused, or EnvFileChanged when a
        key no longer holds the value in `expected` (what the operator saw when editing)."""
        from openrag_tui.config import set_env_values

        set_env_values(self.workspace.env, updates, expected=expected)
        return self.reload_workspace()

    def close(self) -> None:
        with self._lock:
            clients, self._client, self._logs = (self._client, self._logs), None, None
        for client in clients:
            if client is not None:
                client.close()
