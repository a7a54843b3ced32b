"""Names from outside (.env keys and paths, ledger paths, Ray actor names) shown by the panel as
plain, inert text: no markup parsed, no crash, no escape reaching the terminal."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.widgets import DataTable

from openrag_tui.config import Settings
from openrag_tui.indexing.batch import FileState, config_of
from openrag_tui.indexing.ledger import Ledger
from openrag_tui.ui.screens.batches import BatchesScreen
from openrag_tui.ui.screens.env_editor import EnvEditorScreen
from openrag_tui.ui.screens.node_detail import NodeDetailScreen
from tests.support.recorded import load_recorded
from tests.support.synthetic import rows
from tests.ui.conftest import DATA, settle, wait_for

HOSTILE_NAME = "x[/]y\x1b[2J"


def _cells(table: DataTable) -> list[str]:
    return [str(cell) for i in range(table.row_count) for cell in table.get_row_at(i)]


async def test_a_hostile_env_key_and_path_in_the_editor(recorded_app, fixed_dir: Path) -> None:
    folder = fixed_dir / "x[" / "]y"
    folder.mkdir(parents=True)
    env = folder / ".env"
    shutil.copyfile(DATA / "scenario.env", env)
    with env.open("a") as handle:
        handle.write("x[/]y=1\nNOTE=[red]x[/red]\n")
    app = recorded_app(env_file=env)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, EnvEditorScreen)
        cells = _cells(app.screen.query_one(DataTable))
        assert "x[/]y" in cells  # python-dotenv reads that key: shown as it is
        assert any("[red]x[/red]" in cell for cell in cells)
        header = str(app.screen.query_one("#env-path").render())
        assert "x[/]y" in header
        assert not any("\x1b" in cell for cell in cells)


async def test_a_hostile_ledger_path_and_file_names_in_the_batches_screen(
    recorded_app, fixed_dir: Path
) -> None:
    volume = fixed_dir / "v[" / "]data"
    volume.mkdir(parents=True)
    env = fixed_dir / ".env"
    shutil.copyfile(DATA / "scenario.env", env)
    env.write_text(env.read_text() + f"DATA_VOLUME={volume}\n")
    ledger = Ledger(volume / ".openrag-tui" / "ledger.sqlite")
    paths = [str(volume / name) for name in ("[/].txt", "\x1b]0;PWNED\x07.txt", "[b]x[/b].md")]
    ledger.add_batch("20261201-093012-ab12", "p", {}, False, config_of(Settings()), paths, 1.0)
    for index in range(len(paths)):
        ledger.update("20261201-093012-ab12", index, state=FileState.FAILED, error="[/] \x1b[41m")
    ledger.close()
    app = recorded_app(env_file=env)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, BatchesScreen)
                and "[/].txt" in str(app.screen.query_one("#batch-detail").render())
            ),
            "the hostile batch to be shown",
        )
        detail = str(app.screen.query_one("#batch-detail").render())
        assert "\\x1b]0;PWNED\\x07.txt" in detail and "[b]x[/b].md" in detail
        assert "\x1b" not in detail
        assert "v[/]data" in str(app.screen.query_one("#batches-where").render())


async def test_a_hostile_actor_name_in_node_detail(recorded_app) -> None:
    payloads = load_recorded()
    for row in rows(payloads, "actors_detail"):
        row["name"] = HOSTILE_NAME
        row["class_name"] = "[link=file:/etc/passwd]C[/link]"
    app = recorded_app(payloads=payloads)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NodeDetailScreen)
        cells = _cells(app.screen.query_one(DataTable))
        assert "x[/]y\\x1b[2J" in cells and "[link=file:/etc/passwd]C[/link]" in cells
