"""The .env editor: every setting with its value as written (secrets masked), problems inline,
safe edits.

Saving goes through `set_env_values` (the same validation and round-trip writer as `env set`);
a value changed on disk since the edit dialog opened is never overwritten silently, whatever
the timing: the operator sees both values and chooses.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from openrag_tui.config import (
    FIELDS,
    MASK,
    EnvEditRefused,
    EnvFileChanged,
    EnvFileError,
    Problem,
    Severity,
    edit_problems,
    mask_value,
)
from openrag_tui.formats import plain, shorten_middle
from openrag_tui.ui.keys import key
from openrag_tui.ui.messages import EnvReloaded
from openrag_tui.ui.screens.base import PanelModal, PanelScreen
from openrag_tui.ui.screens.confirm import ConfirmScreen
from openrag_tui.ui.widgets.footer import PanelFooter
from openrag_tui.ui.widgets.table import KeyedTable
from openrag_tui.workspace import Workspace, display_path

VALUE_WIDTH = 28


def problem_line(problem: Problem) -> Text:
    style = "red" if problem.severity == Severity.ERROR else "yellow"
    return Text.assemble((problem.severity.value, style), " ", plain(problem.text))


def shown_value(env_key: str, value: str | None) -> str | None:
    """A value as written in the file, as the masking rule lets it be shown."""
    return mask_value(env_key, value)


def is_hidden(env_key: str, value: str | None) -> bool:
    """A value the editor does not prefill: a secret, or text that interpolates one."""
    return shown_value(env_key, value) == MASK


class EnvTable(KeyedTable):
    COLUMNS = (("line", 4), ("key", 27), ("value", VALUE_WIDTH), ("check", 7))


class EnvEditorScreen(PanelScreen):
    """The shared .env as a table; enter edits the selected key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        key("env-edit", "enter,e", "edit", "Edit", changes=True),
        key("env-reload", "ctrl+r", "reload", "Reload"),
        key("env-back", "escape", "app.pop_screen", "Back"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="env-path")
        yield EnvTable(id="env-table")
        yield Static(id="env-detail")
        yield PanelFooter()

    def on_mount(self) -> None:
        self._fill()
        self.query_one(EnvTable).focus()

    @property
    def workspace(self) -> Workspace:
        return self.app.backend.workspace

    def _keys(self) -> list[str]:
        values = self.workspace.env.raw_values
        return [*FIELDS, *(k for k in values if k not in FIELDS)]

    def _fill(self) -> None:
        workspace = self.workspace
        location = workspace.location
        header = Text.assemble((display_path(location.path), "bold"), f" (from {location.source})")
        if not location.exists:
            header.append("  (missing: defaults apply)", style="yellow")
        self.query_one("#env-path", Static).update(header)
        problems = self._problems_by_key()
        values = workspace.env.raw_values
        rows = []
        for env_key in self._keys():
            value = values.get(env_key)
            info = FIELDS.get(env_key)
            if env_key not in values:
                default = "" if info is None or info.default is None else f" {info.default}"
                shown = Text(f"(default{default})", style="dim")
            else:
                shown = plain(shorten_middle(shown_value(env_key, value) or "", VALUE_WIDTH))
            rows.append(
                (
                    env_key,
                    (
                        str(workspace.env.line_of(env_key) or ""),
                        plain(env_key),
                        shown,
                        _check_cell(problems.get(env_key, [])),
                    ),
                )
            )
        self.query_one(EnvTable).refill(rows)
        self._show_detail()

    def _problems_by_key(self) -> dict[str, list[Problem]]:
        grouped: dict[str, list[Problem]] = {}
        for problem in self.workspace.settings.problems:
            grouped.setdefault(problem.variable, []).append(problem)
        return grouped

    def _show_detail(self) -> None:
        env_key = self.query_one(EnvTable).selected_key
        if env_key is None:
            return
        info = FIELDS.get(env_key)
        text = Text(info.description if info else "Not a setting the panel knows; kept as is.")
        for problem in self._problems_by_key().get(env_key, []):
            text.append("\n").append_text(problem_line(problem))
        self.query_one("#env-detail", Static).update(text)

    def on_data_table_row_highlighted(self, _event: KeyedTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def on_env_reloaded(self, _message: EnvReloaded) -> None:
        self._fill()

    # ------------------------------------------------------------ actions

    def action_reload(self) -> None:
        self._reload(announce=True)

    @work(thread=True, exit_on_error=False, group="env")
    def _reload(self, announce: bool = False) -> None:
        try:
            workspace = self.app.backend.reload_workspace()
        except EnvFileError as error:
            self.app.call_from_thread(self.notify, str(error), title=".env", severity="error")
            return
        self.app.call_from_thread(self.app.broadcast_env_reloaded)
        if announce:
            where = display_path(workspace.location.path)
            self.app.call_from_thread(self.notify, f"{where} read again", timeout=3)

    def action_edit(self) -> None:
        env_key = self.query_one(EnvTable).selected_key
        if env_key is None or not self.app.allows("edit"):  # enter reaches here in --read-only
            return
        seen = self.workspace.env.raw_values.get(env_key)

        def apply(new_value: str | None) -> None:
            if new_value is not None:
                self._save({env_key: new_value}, {env_key: seen})

        self.app.push_screen(EditValueScreen(env_key, seen, self.workspace), apply)

    @work(thread=True, exit_on_error=False, group="env")
    def _save(self, updates: dict[str, str], seen: dict[str, str | None] | None) -> None:
        """Save; `seen` is what each key held when the operator started editing it (None: no
        check, the operator already chose to overwrite)."""
        backend = self.app.backend
        try:
            workspace = backend.set_env(updates, expected={} if seen is None else seen)
        except EnvFileChanged as changed:
            self.app.call_from_thread(self._ask_about_conflict, updates, seen or {}, changed.theirs)
            return
        except EnvEditRefused as refused:
            message = "; ".join(p.message for p in refused.problems) or str(refused)
            self.app.call_from_thread(self.notify, message, title="Not saved", severity="error")
            return
        except EnvFileError as error:
            self.app.call_from_thread(self.notify, str(error), title="Not saved", severity="error")
            return
        names = ", ".join(updates)
        saved_to = display_path(workspace.location.path)
        self.app.call_from_thread(self.notify, f"{names} saved to {saved_to}")
        self.app.call_from_thread(self.app.broadcast_env_reloaded)

    def _ask_about_conflict(
        self,
        updates: dict[str, str],
        seen: dict[str, str | None],
        theirs: dict[str, str | None],
    ) -> None:
        lines = [
            f"{k}: you saw {_quoted(k, seen.get(k))}, the file now says "
            f"{_quoted(k, theirs.get(k))}; you are saving {_quoted(k, v)}."
            for k, v in updates.items()
            if k in theirs
        ]
        question = (
            f"{display_path(self.workspace.location.path)} changed on disk while you edited.\n"
            + "\n".join(lines)
            + "\nSave yours anyway? No keeps the file as it is now."
        )

        def decide(overwrite: bool | None) -> None:
            if overwrite:
                self._save(updates, None)
            else:
                self._reload()

        self.app.push_screen(ConfirmScreen(question, "save mine", "keep theirs"), decide)


def _quoted(env_key: str, value: str | None) -> str:
    return "(unset)" if value is None else repr(shown_value(env_key, value))


def _check_cell(problems: list[Problem]) -> Text:
    if any(p.severity == Severity.ERROR for p in problems):
        return Text("error", style="bold red")
    if problems:
        return Text("warning", style="yellow")
    return Text("")


class EditValueScreen(PanelModal):
    """One value as written, validated as you type with the same rules as `env set`."""

    BINDINGS: ClassVar[list[BindingType]] = [key("edit-cancel", "escape", "cancel", "Cancel")]

    def __init__(self, env_key: str, value: str | None, workspace: Workspace) -> None:
        super().__init__()
        self.env_key = env_key
        self.value = value
        self.workspace = workspace
        # a secret's field starts empty, set or not: nothing of it is ever on screen
        self.hidden = is_hidden(env_key, value or "x")

    def compose(self) -> ComposeResult:
        info = FIELDS.get(self.env_key)
        with Vertical(id="dialog"):
            yield Static(
                Text.assemble((self.env_key, "bold"), f"  {info.description if info else ''}")
            )
            yield Input(
                value="" if self.hidden else (self.value or ""),
                placeholder="new value (hidden; enter alone keeps it)" if self.hidden else "value",
                password=self.hidden,
                id="value",
            )
            yield Static(id="verdict")
            yield Static("[dim]enter: save · esc: cancel[/]")

    def on_mount(self) -> None:
        self._judge(self.query_one(Input).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._judge(event.value)

    def _judge(self, value: str) -> list[Problem]:
        problems = edit_problems(self.workspace.env, {self.env_key: value.strip()})
        verdict = self.query_one("#verdict", Static)
        if problems:
            verdict.update(plain(problems[0].message, "red"))
        else:
            verdict.update(Text("ok", style="green"))
        return problems

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if self.hidden and not value:
            self.dismiss(None)  # the field starts empty for a secret: enter alone keeps it
        elif value == (self.value or "") and self.value is not None:
            self.dismiss(None)  # unchanged: nothing to write
        elif not self._judge(value):
            self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
