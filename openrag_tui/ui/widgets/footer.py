"""The key footer, rebuilt once per burst of binding changes.

Textual's Footer rebuilds all its keys (a widget each, styled anew) after every signal that the
bindings changed, and a screen sends several at once (it is pushed, a table takes the focus, a
callback runs): five rebuilds in the panel's first second, each ~20-90 ms of the UI thread,
delaying the first figures. One rebuild after the burst shows the same keys.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class PanelFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)
        self._rebuild_pending = False

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._rebuild_pending:
            self._rebuild_pending = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._rebuild_pending = False
        await self.recompose()
