"""What every panel screen shares: --read-only removes the actions that change anything."""

from __future__ import annotations

from textual.screen import ModalScreen, Screen


class PanelScreen(Screen):
    """A full screen whose changing actions vanish in --read-only."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.app.allows(action)


class PanelModal(ModalScreen):
    """A modal whose changing actions vanish in --read-only."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.app.allows(action)
