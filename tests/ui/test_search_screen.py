"""The panel's search screen against a real Milvus Lite server: keyboard only, at 80×24."""

from __future__ import annotations

from pathlib import Path

import pytest

from openrag_tui.ui.screens.search import ChunkScreen, ResultsTable, SearchScreen
from tests.support.corpus import collection_name, index_corpus
from tests.ui.conftest import settle, wait_for

pytestmark = pytest.mark.ui


@pytest.fixture
def searchable(milvus, env_copy: Path, tmp_path: Path) -> Path:
    collection = collection_name()
    index_corpus(milvus, collection, tmp_path / "corpus", "kb")
    env_copy.write_text(
        env_copy.read_text().replace(
            "VDB_PORT=9", milvus.env + f"OPENRAG_TUI_COLLECTION={collection}"
        )
    )
    return env_copy


async def _search(pilot, query: str = "marmoset") -> None:
    await settle(pilot)
    await pilot.press("f")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, SearchScreen), "the search screen")
    await pilot.press("k", "b", "enter", *query, "enter")
    await wait_for(
        pilot,
        lambda: pilot.app.screen.query_one(ResultsTable).row_count > 0,
        "the results",
        timeout=30,
    )
    await pilot.pause()


async def test_a_query_shows_the_right_document_first_and_opens_its_chunk(
    recorded_app, searchable: Path
) -> None:
    app = recorded_app(env_file=searchable)
    async with app.run_test(size=(80, 24)) as pilot:
        await _search(pilot)
        table = app.screen.query_one(ResultsTable)
        first = [str(cell) for cell in table.get_row_at(0)]
        assert first[0] == "1" and first[2] == "animals.txt" and first[3] == "1"
        assert "marmoset" in str(app.screen.query_one("#search-excerpt").render()).lower()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ChunkScreen) and app.screen.hit.file_id == "animals.txt"
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert not isinstance(app.screen, SearchScreen | ChunkScreen)


async def test_no_store_is_one_line_on_the_screen(recorded_app, env_copy: Path) -> None:
    app = recorded_app(env_file=env_copy)  # VDB_PORT=9: nothing answers
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen), "the screen")
        await pilot.press("k", "b", "enter", "x", "enter")
        await wait_for(
            pilot,
            lambda: "does not answer" in str(app.screen.query_one("#search-said").render()),
            "the reason",
            timeout=30,
        )


def test_search_80x24(snap_compare, recorded_app, searchable: Path) -> None:
    assert snap_compare(
        recorded_app(env_file=searchable), terminal_size=(80, 24), run_before=_search
    )
