"""The .env editor: every setting with its value (secrets masked), problems inline, safe edits.

Saving goes through `set_env_values` (the same validation and round-trip writer as `env set`);
a file changed on disk since it was read is never overwritten silently: the operator chooses.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Input, Static

from openrag_tui.config import (
    FIELDS,
    EnvEditRefused,
    EnvFileChanged,
    EnvFileError,
    Problem,
    Severity,
    edit_problems,
    is_secret,
    mask_value,
)
from openrag_tui.ui.keys import key
from openrag_tui.ui.messages import EnvReloaded
from openrag_tui.ui.screens.base import PanelModal, PanelScreen
from openrag_tui.ui.screens.confirm import ConfirmScreen
from openrag_tui.workspace import Workspace, display_path


def problem_line(problem: Problem) -> Text:
    style = "red" if problem.severity == Severity.ERROR else "yellow"
    where = f" (line {problem.line})" if problem.line else ""
    return Text.assemble((problem.severity.value, style), f" {problem.variable}{where}: ",
                         problem.message)  # fmt: skip


class EnvEditorScreen(PanelScreen):
    """The shared .env as a table; enter edits the selected key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        key("env-edit", "enter,e", "edit", "Edit", changes=True),
        key("env-reload", "ctrl+r", "reload", "Reload"),
        key("env-back", "escape", "app.pop_screen", "Back"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="env-path")
        yield DataTable(id="env-table", cursor_type="row", zebra_stripes=False)
        yield Static(id="env-detail")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.cursor_foreground_priority = "renderable"
        for label, width in (("line", 4), ("key", 27), ("value", 28), ("check", 7)):
            table.add_column(label, width=width)
        self._fill()
        table.focus()

    @property
    def workspace(self) -> Workspace:
        return self.app.backend.workspace

    def _keys(self) -> list[str]:
        values = self.workspace.env.values
        return [*FIELDS, *(k for k in values if k not in FIELDS)]

    def _fill(self) -> None:
        workspace = self.workspace
        location = workspace.location
        state = "" if location.exists else "  [yellow](missing: defaults apply)[/]"
        self.query_one("#env-path", Static).update(
            f"[b]{display_path(location.path)}[/] (from {location.source}){state}"
        )
        problems = self._problems_by_key()
        table = self.query_one(DataTable)
        selected = table.cursor_row
        table.clear()
        for env_key in self._keys():
            value = workspace.env.values.get(env_key)
            info = FIELDS.get(env_key)
            if value is None:
                default = "" if info is None or info.default is None else f" {info.default}"
                shown = Text(f"(default{default})", style="dim")
            else:
                shown = Text(mask_value(env_key, value) or "")
            table.add_row(
                str(workspace.env.line_of(env_key) or ""),
                env_key,
                shown,
                _check_cell(problems.get(env_key, [])),
                key=env_key,
            )
        table.move_cursor(row=min(selected, table.row_count - 1), animate=False)
        self._show_detail()

    def _problems_by_key(self) -> dict[str, list[Problem]]:
        grouped: dict[str, list[Problem]] = {}
        for problem in self.workspace.settings.problems:
            grouped.setdefault(problem.variable, []).append(problem)
        return grouped

    def _selected_key(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _show_detail(self) -> None:
        env_key = self._selected_key()
        if env_key is None:
            return
        info = FIELDS.get(env_key)
        text = Text(info.description if info else "Not a setting the panel knows; kept as is.")
        for problem in self._problems_by_key().get(env_key, []):
            text.append("\n").append_text(problem_line(problem))
        self.query_one("#env-detail", Static).update(text)

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit()

    def on_env_reloaded(self, _message: EnvReloaded) -> None:
        self._fill()

    # ------------------------------------------------------------ actions

    def action_reload(self) -> None:
        self._reload()

    @work(thread=True, exit_on_error=False, group="env")
    def _reload(self) -> None:
        self.app.backend.reload_workspace()
        self.app.call_from_thread(self.app.broadcast_env_reloaded)

    def action_edit(self) -> None:
        env_key = self._selected_key()
        if env_key is None or not self.app.allows("edit"):  # enter reaches here in --read-only
            return
        value = self.workspace.env.values.get(env_key)

        def apply(new_value: str | None) -> None:
            if new_value is not None:
                self._save({env_key: new_value})

        self.app.push_screen(EditValueScreen(env_key, value, self.workspace), apply)

    @work(thread=True, exit_on_error=False, group="env")
    def _save(self, updates: dict[str, str], reload_first: bool = False) -> None:
        backend = self.app.backend
        try:
            if reload_first:
                backend.reload_workspace()
            workspace = backend.set_env(updates)
        except EnvFileChanged:
            self.app.call_from_thread(self._ask_about_conflict, updates)
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

    def _ask_about_conflict(self, updates: dict[str, str]) -> None:
        change = ", ".join(f"{k}={mask_value(k, v)}" for k, v in updates.items())
        question = (
            f"{display_path(self.workspace.location.path)} changed on disk since it was read.\n"
            f"Reload it and apply {change} on top of the new content?\n"
            "No keeps the file exactly as it is now."
        )

        def decide(reload_and_apply: bool | None) -> None:
            if reload_and_apply:
                self._save(updates, reload_first=True)
            else:
                self._reload()

        self.app.push_screen(ConfirmScreen(question, "reload and apply", "cancel"), decide)


def _check_cell(problems: list[Problem]) -> Text:
    if any(p.severity == Severity.ERROR for p in problems):
        return Text("error", style="bold red")
    if problems:
        return Text("warning", style="yellow")
    return Text("")


class EditValueScreen(PanelModal):
    """One value, validated as you type with the same rules as `env set`."""

    BINDINGS: ClassVar[list[BindingType]] = [key("edit-cancel", "escape", "cancel", "Cancel")]

    def __init__(self, env_key: str, value: str | None, workspace: Workspace) -> None:
        super().__init__()
        self.env_key = env_key
        self.value = value
        self.workspace = workspace

    def compose(self) -> ComposeResult:
        info = FIELDS.get(self.env_key)
        secret = is_secret(self.env_key)
        with Vertical(id="dialog"):
            yield Static(f"[b]{self.env_key}[/]  {info.description if info else ''}")
            yield Input(
                value="" if secret else (self.value or ""),
                placeholder="new value (hidden)" if secret else "value",
                password=secret,
                id="value",
            )
            yield Static(id="verdict")
            yield Static("[dim]enter: save · esc: cancel[/]")

    def on_mount(self) -> None:
        self._judge(self.query_one(Input).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self._judge(event.value)

    def _judge(self, value: str) -> list[Problem]:
        problems = edit_problems(self.workspace.env, {self.env_key: value})
        verdict = self.query_one("#verdict", Static)
        if problems:
            verdict.update(Text(problems[0].message, style="red"))
        else:
            verdict.update(Text("ok", style="green"))
        return problems

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if is_secret(self.env_key) and not event.value:
            self.dismiss(None)  # the field starts empty for a secret: enter alone keeps it
        elif not self._judge(event.value):
            self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
