"""What one run of the CLI or the panel works on: the located .env, its settings, the dashboard.

The CLI and the panel both start here, so `--env` and `--dashboard` mean the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openrag_tui.cluster.dashboard import default_dashboard_url, load_token
from openrag_tui.config import EnvFile, EnvLocation, Settings, locate_env, redact

if TYPE_CHECKING:
    from openrag_tui.cluster.dashboard import DashboardClient


def display_path(path: Path) -> str:
    """A path as the operator reads it: under the home folder it starts with `~`."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Workspace:
    """The shared .env as read now, and where the dashboard is."""

    location: EnvLocation
    env: EnvFile
    settings: Settings
    dashboard_override: str | None = None

    @property
    def dashboard_url(self) -> str:
        return default_dashboard_url(
            self.dashboard_override, self.settings.dashboard_url, self.settings.ray_dashboard_port
        )

    @property
    def dashboard_display(self) -> str:
        """The dashboard URL as screens and JSON show it: credentials in it masked."""
        return redact(self.dashboard_url)

    def client(self) -> DashboardClient:
        from openrag_tui.cluster.dashboard import DashboardClient

        return DashboardClient(self.dashboard_url, token=load_token())

    def reloaded(self) -> Workspace:
        """The same files, read again (after an edit here or elsewhere)."""
        return open_workspace(self.location, self.dashboard_override)


def open_workspace(env: str | EnvLocation | None = None, dashboard: str | None = None) -> Workspace:
    """Locate and read the .env (a missing file reads as empty: OpenRAG's defaults apply)."""
    location = env if isinstance(env, EnvLocation) else locate_env(env)
    envfile = (
        EnvFile.read(location.path) if location.path.exists() else EnvFile.empty(location.path)
    )
    return Workspace(location, envfile, Settings.from_envfile(envfile), dashboard)
