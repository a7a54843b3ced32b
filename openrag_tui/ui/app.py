"""The App, and the make_app() factory shared by the CLI and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.screen import Screen

from openrag_tui.cluster.processes import ray_processes
from openrag_tui.cluster.targets import LifecycleError, LocalHead, Target
from openrag_tui.ui.backend import Backend, ClientFactory
from openrag_tui.ui.keys import CHANGING_ACTIONS, key, keymap_path, load_keymap
from openrag_tui.ui.messages import EnvReloaded
from openrag_tui.ui.screens.batches import BatchesScreen
from openrag_tui.ui.screens.cluster_log import ClusterLogScreen
from openrag_tui.ui.screens.confirm import ConfirmScreen
from openrag_tui.ui.screens.env_editor import EnvEditorScreen
from openrag_tui.ui.screens.help import HelpScreen
from openrag_tui.ui.screens.main import MainScreen
from openrag_tui.ui.styles import stylesheet
from openrag_tui.workspace import Workspace, display_path

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
        self._watching = False  # one look at the .env at a time, even on a hung network mount
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

    def allows(self, action: str) -> bool:
        """Whether an action may run: --read-only removes everything that changes."""
        return not (self.read_only and action in CHANGING_ACTIONS)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.allows(action)

    # ------------------------------------------------------------ actions

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        title = "panel" if isinstance(self.screen, MainScreen) else self.screen.__class__.__name__
        bindings = self.screen.active_bindings
        self.push_screen(HelpScreen(title, bindings, display_path(self.keymap_file)))

    def action_open_batches(self) -> None:
        if not isinstance(self.screen, BatchesScreen):
            self.push_screen(BatchesScreen())

    def action_open_env_editor(self) -> None:
        if not isinstance(self.screen, EnvEditorScreen):
            self.push_screen(EnvEditorScreen())

    def action_start_cluster(self) -> None:
        try:
            target = self.backend.cluster_target()
        except LifecycleError as error:
            self.notify(str(error), title="Cannot start", severity="error", timeout=10)
            return
        self.push_screen(ClusterLogScreen(self.backend.start_run(target)))

    def action_stop_cluster(self) -> None:
        try:
            target = self.backend.cluster_target()
        except LifecycleError as error:
            self.notify(str(error), title="Cannot stop", severity="error", timeout=10)
            return
        self._confirm_stop(target)

    @work(thread=True, exit_on_error=False, group="lifecycle")
    def _confirm_stop(self, target: Target) -> None:
        """Say exactly what a stop ends (a local `ray stop` ends every Ray process here)."""
        if isinstance(target, LocalHead):
            try:
                processes = ray_processes()
            except Exception as error:  # psutil denied: no blind `ray stop`
                self.call_from_thread(
                    self.notify, str(error), title="Cannot stop", severity="error"
                )
                return
            listed = "\n".join(str(process) for process in processes[:12])
            more = f"\n… and {len(processes) - 12} more" if len(processes) > 12 else ""
            question = (
                f"`ray stop` ends all {len(processes)} Ray processes on this machine:\n"
                f"{listed}{more}\nStop them?"
            )
        else:
            question = f"Run `ray down -y {target.path}`? It stops every node of {target.name}."

        def decide(stop: bool | None) -> None:
            if stop:
                self.push_screen(ClusterLogScreen(self.backend.stop_run(target)))

        self.call_from_thread(self.push_screen, ConfirmScreen(question, "stop", "keep"), decide)

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
        if not self._watching:
            self._watching = True
            self._watch_env()

    @work(thread=True, exit_on_error=False, group="env-watch")
    def _watch_env(self) -> None:
        """Pick up edits made elsewhere (another operator, an editor on the head node)."""
        try:
            if self.backend.env_changed_on_disk():
                self.backend.reload_workspace()
                self.call_from_thread(self.broadcast_env_reloaded)
        except Exception as error:  # an unreadable file must not stop the watch: say so
            self.call_from_thread(self.notify, str(error), title=".env", severity="error")
        finally:
            self._watching = False

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
