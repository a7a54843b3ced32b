"""When the one-command first run starts a demo cluster, and when it never does."""

from __future__ import annotations

from pathlib import Path

import pytest

from openrag_tui import embedded
from openrag_tui.workspace import open_workspace
from tests.support.raycluster import free_port


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No shared .env anywhere, nothing at the default dashboard port, an empty state folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHARED_ENV", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(embedded, "_answers", lambda url: False)
    if Path("/ray_mount/.env").exists():
        pytest.skip("this machine has a /ray_mount/.env")
    return tmp_path


def test_a_bare_machine_wants_the_demo(bare_machine: Path) -> None:
    assert embedded.wanted(open_workspace(), env_given=False, dashboard_given=False)


def test_never_where_an_env_exists_or_is_named(bare_machine: Path) -> None:
    assert not embedded.wanted(open_workspace(), env_given=True, dashboard_given=False)
    assert not embedded.wanted(open_workspace(), env_given=False, dashboard_given=True)
    (bare_machine / ".env").write_text("RAY_POOL_SIZE=1\n")
    assert not embedded.wanted(open_workspace(), env_given=False, dashboard_given=False)


def test_never_when_a_cluster_answers(bare_machine: Path, monkeypatch) -> None:
    monkeypatch.setattr(embedded, "_answers", lambda url: True)
    assert not embedded.wanted(open_workspace(), env_given=False, dashboard_given=False)


def test_the_demo_env_is_valid_and_declares_gpus(bare_machine: Path) -> None:
    embedded._write_demo_env(embedded.demo_env_path())
    workspace = open_workspace(str(embedded.demo_env_path()))
    assert workspace.settings.errors == []
    assert workspace.settings.local_gpus in (None, embedded.DEMO_GPUS)
    assert Path(workspace.settings.data_volume).is_dir()
    assert embedded.is_demo(workspace)
    assert "openrag-tui down --env" in embedded.farewell(workspace)


def test_nothing_listening_does_not_answer() -> None:
    assert not embedded._answers(f"http://127.0.0.1:{free_port()}")


def test_the_demo_volume_holds_sample_documents_a_first_batch_can_index(
    bare_machine: Path,
) -> None:
    """`b`, `n`, `samples`: a newcomer's first batch finds a multi-page PDF, Markdown, HTML and
    text, and every one of them converts."""
    from openrag_tui.indexing.loaders import load
    from openrag_tui.indexing.paths import Where
    from openrag_tui.indexing.plan import plan_batch

    embedded._write_demo_env(embedded.demo_env_path())
    workspace = open_workspace(str(embedded.demo_env_path()))
    where = Where.of(workspace.settings, workspace.location.path.parent)
    request = plan_batch(workspace.settings, where, [embedded.SAMPLES], "demo", cwd=bare_machine)
    names = sorted(Path(path).name for path in request.files)
    assert names == ["faq.html", "guide.pdf", "notes.md", "readme.txt"]
    assert request.notes == (f"samples: taken from DATA_VOLUME ({where.volume})",)
    documents = {Path(path).suffix: load(path) for path in request.files}
    assert documents[".pdf"].page_count == 3
    assert all(document.pages[0].strip() for document in documents.values())
    assert oct(embedded.demo_env_path().stat().st_mode & 0o777) == "0o600"
