"""The App, and the make_app() factory shared by the CLI and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen

from openrag_tui.formats import safe, safe_lines
from openrag_tui.ui.backend import Backend
from openrag_tui.ui.keys import CHANGING_ACTIONS, key, keymap_path, load_keymap, refused_key
from openrag_tui.ui.messages import EnvReloaded
from openrag_tui.ui.screens.main import MainScreen
from openrag_tui.ui.styles import stylesheet
from openrag_tui.ui.workers import OneAtATime

if TYPE_CHECKING:  # the other screens load when first opened: the panel draws before
    from openrag_tui.ui.backend import ClientFactory
    from openrag_tui.workspace import Workspace

#: how often the panel looks for edits made to the .env outside it (seconds)
ENV_WATCH_SECONDS = 2.0


class OpenRagApp(App[int]):
    """The control panel."""

    CSS_PATH = stylesheet()
    TITLE = "openrag-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        key("help", "question_mark", "help", "Help"),
        key("quit", "q", "quit", "Quit"),
    ]

    def __init__(
        self,
        backend: Backend,
        read_only: bool = False,
        keymap_file: Path | None = None,
        env_watch_seconds: float | None = ENV_WATCH_SECONDS,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.read_only = read_only
        self.env_watch_seconds = env_watch_seconds
        self._env_watch = OneAtATime("env-watch")  # one look at a time, even on a hung mount
        self.keymap_file = keymap_file or keymap_path()
        self.keymap = load_keymap(self.keymap_file)

    def get_default_screen(self) -> MainScreen:
        return MainScreen(self.backend)

    def on_mount(self) -> None:
        if self.read_only:
            self.sub_title = "read-only"
        if self.keymap.keys:
            self.set_keymap(self.keymap.keys)
        for problem in self.keymap.problems:
            self.notify(problem, title="Keymap", severity="warning", timeout=10)
        if self.env_watch_seconds:
            self.set_interval(self.env_watch_seconds, self._look_at_env)

    def on_unmount(self) -> None:
        self.backend.close()

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notifications carry outside text (errors naming files, keys, hosts): shown plain and
        safe unless a caller passes its own markup."""
        if not markup:
            message, title = safe_lines(message), safe(title)
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def allows(self, action: str) -> bool:
        """Whether an action may run: --read-only removes everything that changes."""
        return not (self.read_only and action in CHANGING_ACTIONS)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.allows(action)

    def on_key(self, event: events.Key) -> None:
        """In --read-only a changing key is not bound: say why nothing happens."""
        if not self.read_only:
            return
        ids = [getattr(b, "id", None) for b in (*self.screen.BINDINGS, *self.BINDINGS)]
        refused = refused_key(event.key, self.screen.active_bindings, ids, self.keymap.keys)
        if refused:
            event.stop()
            self.notify(f"Read-only: {refused} is off (the panel was opened with --read-only).")

    # ------------------------------------------------------------ actions

    def action_help(self) -> None:
        from openrag_tui.ui.screens.help import HelpScreen
        from openrag_tui.workspace import display_path

        if isinstance(self.screen, HelpScreen):
            return
        title = "panel" if isinstance(self.screen, MainScreen) else self.screen.__class__.__name__
        bindings = self.screen.active_bindings
        self.push_screen(HelpScreen(title, bindings, display_path(self.keymap_file)))

    def action_open_batches(self) -> None:
        from openrag_tui.ui.screens.batches import BatchesScreen

        if not isinstance(self.screen, BatchesScreen):
            self.push_screen(BatchesScreen())

    def action_open_search(self, partition: str = "") -> None:
        from openrag_tui.ui.screens.search import SearchScreen

        if not isinstance(self.screen, SearchScreen):
            self.push_screen(SearchScreen(partition))

    def action_open_env_editor(self) -> None:
        from openrag_tui.ui.screens.env_editor import EnvEditorScreen

        if not isinstance(self.screen, EnvEditorScreen):
            self.push_screen(EnvEditorScreen())

    def action_start_cluster(self) -> None:
        self._confirm_start()

    def action_stop_cluster(self) -> None:
        self._confirm_stop()

    @work(thread=True, exit_on_error=False, group="lifecycle")
    def _confirm_start(self) -> None:
        """Say what a start will start, and where, and ask (a cluster.yaml is read here, off
        the UI thread); nothing is started when a cluster already answers."""
        from openrag_tui.cluster.targets import LifecycleError, start_question
        from openrag_tui.ui.screens.cluster_log import ClusterLogScreen
        from openrag_tui.ui.screens.confirm import ConfirmScreen

        try:
            target = self.backend.cluster_target()
            if self.backend.cluster_answers():
                url = self.backend.dashboard_url
                self.call_from_thread(
                    self.notify, f"A Ray cluster already answers at {url}: nothing to start."
                )
                return
        except LifecycleError as error:
            self.call_from_thread(
                self.notify, str(error), title="Cannot start", severity="error", timeout=10
            )
            return
        question = start_question(target, self.backend.dashboard_url)

        def decide(start: bool | None) -> None:
            if start:
                self.push_screen(ClusterLogScreen(self.backend.start_run(target)))

        self.call_from_thread(
            self.push_screen, ConfirmScreen(question, "start", "keep it stopped"), decide
        )

    @work(thread=True, exit_on_error=False, group="lifecycle")
    def _confirm_stop(self) -> None:
        """Say exactly what a stop ends (a local `ray stop` ends every Ray process here)."""
        from openrag_tui.cluster.processes import processes_summary
        from openrag_tui.cluster.targets import LocalHead
        from openrag_tui.ui.screens.cluster_log import ClusterLogScreen
        from openrag_tui.ui.screens.confirm import ConfirmScreen

        details = None
        try:
            target = self.backend.cluster_target()
            if isinstance(target, LocalHead):
                processes = self.backend.ray_processes()
                if not processes:
                    self.call_from_thread(
                        self.notify, "No Ray processes run on this machine: nothing to stop."
                    )
                    return
                question = processes_summary(processes) + "\nStop them?"
                details = "\n".join(str(process) for process in processes)
            else:
                question = f"Run `ray down -y {target.path}`? It stops every node of {target.name}."
        except Exception as error:  # a bad cluster.yaml, psutil denied: no blind stop
            self.call_from_thread(
                self.notify, str(error), title="Cannot stop", severity="error", timeout=10
            )
            return

        def decide(stop: bool | None) -> None:
            if stop:
                self.push_screen(ClusterLogScreen(self.backend.stop_run(target)))

        self.call_from_thread(
            self.push_screen, ConfirmScreen(question, "stop", "keep", details=details), decide
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette lists every action the current screen's keys offer, then Textual's own."""
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.description or binding.action in seen or not active.enabled:
                continue
            seen.add(binding.action)
            yield SystemCommand(
                binding.description,
                f"key: {self.get_key_display(binding)}",
                partial(self.run_action, binding.action, active.node),
            )
        yield from super().get_system_commands(screen)

    # ------------------------------------------------------------ the .env

    def _look_at_env(self) -> None:
        self._env_watch.start(self, self._watch_env)

    def _watch_env(self) -> None:
        """Pick up edits made elsewhere (another operator, an editor on the head node)."""
        from openrag_tui.workspace import display_path

        try:
            if self.backend.env_changed_on_disk():
                workspace = self.backend.reload_workspace()
                self.call_from_thread(self.broadcast_env_reloaded)
                where = display_path(workspace.location.path)
                self.call_from_thread(self.notify, f"{where} changed on disk: read again.")
        except Exception as error:  # an unreadable file must not stop the watch: say so
            self.call_from_thread(self.notify, str(error), title=".env", severity="error")

    @work(thread=True, exit_on_error=False, group="env-watch")
    def backend_changed_env(self) -> None:
        """A command of ours wrote the .env: read it now rather than at the next watch."""
        self.backend.reload_workspace()
        self.call_from_thread(self.broadcast_env_reloaded)

    def broadcast_env_reloaded(self) -> None:
        for screen in self.screen_stack:
            screen.post_message(EnvReloaded())


def make_app(
    workspace: Workspace,
    read_only: bool = False,
    client_factory: ClientFactory | None = None,
    clock: Callable[[], float] = time.time,
    keymap_file: Path | None = None,
    env_watch_seconds: float | None = ENV_WATCH_SECONDS,
) -> OpenRagApp:
    """Build the panel; tests pass recorded dashboards, a frozen clock and their own keymap."""
    backend = Backend(workspace, client_factory, clock)
    return OpenRagApp(backend, read_only, keymap_file, env_watch_seconds)
