"""`index` and `batches` without a cluster: bad input is one line and exit 2, reads work offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openrag_tui.cli import main
from openrag_tui.config import Settings
from openrag_tui.indexing.batch import config_of
from openrag_tui.indexing.ledger import Ledger


@pytest.fixture
def env(tmp_path: Path) -> Path:
    (tmp_path / "data" / "docs").mkdir(parents=True)
    (tmp_path / "data" / "docs" / "a.txt").write_text("hello")
    path = tmp_path / ".env"
    path.write_text("DATA_VOLUME=./data\nRAY_HEAD_ADDRESS=127.0.0.1:1\n")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["/etc/hostname", "--partition", "p"], "outside DATA_VOLUME"),
        (["{data}/docs", "--partition", "a/b"], "partition 'a/b'"),
        (["{data}/docs", "--partition", "p", "--metadata", "[1]"], "a JSON object"),
        (["{data}/docs", "--partition", "p", "--metadata", "{{"], "not JSON"),
        (["{data}/missing", "--partition", "p"], "no such file"),
    ],
)
def test_bad_index_input_is_one_line_and_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    data = str(env.parent / "data")
    code, out, err = run(
        capsys, "index", *(a.format(data=data) for a in arguments), "--env", str(env)
    )
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_bad_pdf_loader_in_the_env_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.write_text(env.read_text() + "PDF_LOADER=docling\n")
    code, _, err = run(capsys, "index", "data/docs", "--partition", "p", "--env", str(env))
    assert code == 2 and "PDF_LOADER (line 3)" in err and "pdfium, marker, marker-text" in err


def test_batches_are_read_from_the_ledger_without_a_cluster(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert json.loads(run(capsys, "batches", "--json", "--env", str(env))[1]) == {"batches": []}
    ledger = Ledger(env.parent / "data" / ".openrag-tui" / "ledger.sqlite")
    ledger.add_batch("b1", "docs", {}, False, config_of(Settings()), ["/x/a.txt"], now=1.0)
    code, out, _ = run(capsys, "batches", "--json", "--env", str(env))
    (batch,) = json.loads(out)["batches"]
    assert code == 0 and (batch["batch_id"], batch["state"], batch["counts"]["QUEUED"]) == (
        "b1", "queued", 1,
    )  # fmt: skip
    code, out, _ = run(capsys, "batches", "show", "b1", "--json", "--env", str(env))
    assert code == 0 and [f["path"] for f in json.loads(out)["files"]] == ["/x/a.txt"]
    code, out, _ = run(capsys, "batches", "show", "b1", "--env", str(env))
    assert code == 0 and "QUEUED" in out and "/x/a.txt" in out
    code, _, err = run(capsys, "batches", "show", "nope", "--env", str(env))
    assert code == 1 and "no batch 'nope'" in err
