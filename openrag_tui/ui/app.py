"""The App, and the make_app() factory shared by the CLI and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from openrag_tui.ui.backend import Backend, ClientFactory
from openrag_tui.ui.screens.main import MainScreen
from openrag_tui.ui.styles import stylesheet
from openrag_tui.workspace import Workspace


class OpenRagApp(App[int]):
    """The control panel."""

    CSS_PATH = stylesheet()
    TITLE = "openrag-tui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit")]

    def __init__(self, backend: Backend, read_only: bool = False) -> None:
        super().__init__()
        self.backend = backend
        self.read_only = read_only

    def get_default_screen(self) -> MainScreen:
        return MainScreen(self.backend)

    def on_unmount(self) -> None:
        self.backend.close()


def make_app(
    workspace: Workspace,
    read_only: bool = False,
    client_factory: ClientFactory | None = None,
    clock: Callable[[], float] = time.time,
) -> OpenRagApp:
    """Build the panel; tests pass recorded dashboards and a frozen clock."""
    return OpenRagApp(Backend(workspace, client_factory, clock), read_only=read_only)
