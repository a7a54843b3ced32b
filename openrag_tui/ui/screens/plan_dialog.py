"""`P` on the pools: the planner's recommendation, recomputed as the figures are typed.

The figures start from what this panel measured (the median GPU memory of one actor over its
history); a blank one means "measured" (or, for the GPU, "as NVML reports"). Enter applies
the plan through `openrag-tui plan --apply` (the .env written, the deployed pools resized).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static

from openrag_tui.cluster.planner import Given, PlanRefused, PoolPlan, plan_pools
from openrag_tui.cluster.state import ClusterState
from openrag_tui.config.pools import PoolSpec
from openrag_tui.ui.keys import key
from openrag_tui.ui.screens.base import PanelModal

FIELDS = (  # input id, its label, the CLI flag
    ("indexer-gb", "indexer GB", "--indexer-gb"),
    ("marker-gb", "marker GB", "--marker-gb"),
    ("gpu-gb", "GPU GB", "--gpu-gb"),
    ("reserve-gb", "reserve GB", "--reserve-gb"),
)


def plan_text(plan: PoolPlan) -> Text:
    """The recommended values (changes marked), one reason each, the fit and the notes."""
    text = Text()
    for line in plan.reasons:
        key_name, _, rest = line.partition("=")
        value, _, why = rest.partition(": ")
        value = value.split(" ")[0]
        was = plan.current.get(key_name)
        text.append(f"{key_name}={value}", style="bold yellow" if was != value else "bold")
        if was != value:
            text.append(f" (now {was})", style="dim")
        text.append(f"\n  {why}\n", style="dim")
    for number, (pool, fit) in enumerate(plan.fit.items()):
        text.append(f"{' · ' if number else ''}{pool}: {fit.run} of {fit.size} run now")
        if fit.wait:
            text.append(f", {fit.wait} would wait", style="yellow")
    for note in plan.notes:
        text.append(f"\nnote: {note}", style="yellow")
    return text


class PlanScreen(PanelModal):
    """Dismisses with the `plan --apply` arguments, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [key("plan-cancel", "escape", "cancel", "Cancel")]

    def __init__(
        self,
        state: ClusterState,
        specs: Mapping[str, PoolSpec],
        measured: Mapping[str, float | None],
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self.state = state
        self.specs = specs
        self.measured = measured
        self.read_only = read_only
        self.plan: PoolPlan | None = None

    def compose(self) -> ComposeResult:
        start = {
            f"{pool}-gb": "" if mib is None else f"{mib / 1024:.2f}"
            for pool, mib in self.measured.items()
        }
        with Vertical(id="dialog"):
            yield Static(Text("Plan the pools from GPU memory", style="bold"))
            with Horizontal(id="plan-figures"):
                for ident, label, _ in FIELDS:
                    with Vertical(classes="plan-figure"):
                        yield Label(label)
                        yield Input(start.get(ident, ""), id=ident, placeholder="measured")
            yield Static(id="plan")
            action = "shown only (--read-only)" if self.read_only else "enter: apply"
            yield Static(f"[dim]{action} · blank: measured · esc: cancel[/]", id="plan-keys")

    def on_mount(self) -> None:
        self.query_one("#reserve-gb", Input).placeholder = "0"
        self.query_one("#gpu-gb", Input).placeholder = "NVML"
        self._judge()

    def on_input_changed(self, _event: Input.Changed) -> None:
        self._judge()

    def _figures(self) -> dict[str, float | None]:
        found: dict[str, float | None] = {}
        for ident, label, _ in FIELDS:
            text = self.query_one(f"#{ident}", Input).value.strip()
            if not text:
                found[ident] = None
                continue
            try:
                found[ident] = float(text)
            except ValueError:
                raise PlanRefused(f"{label} is not a number: {text!r}") from None
        return found

    def _judge(self) -> None:
        shown = self.query_one("#plan", Static)
        try:
            figures = self._figures()
            given = Given(
                figures["indexer-gb"], figures["marker-gb"], figures["gpu-gb"],
                figures["reserve-gb"] or 0.0,
            )  # fmt: skip
            self.plan = plan_pools(self.state, self.specs, given, self.measured)
        except PlanRefused as refused:
            self.plan = None
            shown.update(Text(str(refused), style="red"))
            return
        shown.update(plan_text(self.plan))

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        if self.plan is None or self.read_only:
            return
        arguments = []
        for ident, _, flag in FIELDS:
            text = self.query_one(f"#{ident}", Input).value.strip()
            if text:
                arguments += [flag, text]
        self.dismiss(arguments)

    def action_cancel(self) -> None:
        self.dismiss(None)
