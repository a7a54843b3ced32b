"""What a CLI call loads and writes before it works: only its own subcommand's module, and
its JSON as `json.dumps` would (compact), whatever the text holds."""

from __future__ import annotations

import argparse
import importlib
import json

import msgspec
import pytest

from openrag_tui.cli import COMMAND_MODULES, COMMANDS, _needed_modules, build_parser
from openrag_tui.cli.common import json_text


def test_each_module_adds_the_commands_it_is_named_for() -> None:
    for module in COMMAND_MODULES:
        commands = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(commands)
        assert set(commands.choices) == {name for name, of in COMMANDS.items() if of == module}


@pytest.mark.parametrize(
    ("argv", "modules"),
    [
        (["status", "--json"], ("openrag_tui.cli.status",)),
        (["--env", "x", "--read-only", "--dashboard=h", "scale", "a"], ("openrag_tui.cli.pools",)),
        (["--dashboard", "status", "env", "show"], ("openrag_tui.cli.env",)),  # a value
        (["--en", "x", "status"], COMMAND_MODULES),  # an abbreviation: argparse decides
        (["statu"], COMMAND_MODULES),  # not a command: its error lists them all
        (["--help"], COMMAND_MODULES),
        ([], ()),  # the panel needs none
        (["--read-only", "--env", "x"], ()),
    ],
)  # fmt: skip
def test_the_named_module_all_or_none(argv: list[str], modules: tuple[str, ...]) -> None:
    assert _needed_modules(argv) == modules


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--json", "--watch", "2"],
        ["--read-only", "--env", "e", "scale", "indexer", "3", "--jsonl"],
        ["batches", "show", "abc"],
        ["logs", "indexer", "--lines", "5", "--only", "err"],
        ["autopilot", "status", "--json"],
        ["--env", "e", "env", "set", "A=1", "--add"],
    ],
)
def test_a_command_line_parses_alike_with_its_module_only(argv: list[str]) -> None:
    def parsed(parser: argparse.ArgumentParser) -> dict[str, object]:
        found = vars(parser.parse_args(argv))
        return {**found, "handler": found["handler"].__name__}

    assert parsed(build_parser(argv)) == parsed(build_parser())


def test_an_unknown_command_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(["statu"]).parse_args(["statu"])
    said = capsys.readouterr().err
    assert all(f"'{name}'" in said for name in COMMANDS)


@pytest.mark.parametrize(
    "payload",
    [
        {"a": 1, "b": [1.5, None, True], "c": {"d": "e"}, "n": 2**70},
        {"warning": "0.5 × 40.0 GiB", "name": "gpu-\U0001f600\u202e\x9b\x1b[2J"},
        {"lone": "\ud800", 3: "int key"},  # orjson refuses a lone surrogate: json.dumps writes it
    ],
)
def test_json_text_is_json_dumps_compact_and_ascii(payload: dict[object, object]) -> None:
    text = json_text(payload)
    assert text == json.dumps(payload, separators=(",", ":")) and text.isascii()


@pytest.mark.parametrize("number", [1e16, 1.5e300, 1e-7, 0.1 + 0.2, -0.0, 2**70, -(2**64)])
def test_json_text_reads_back_every_number(number: float) -> None:
    """The text of a float may differ from `json.dumps`'s (`1e16`, not `1e+16`), its value not."""
    assert json.loads(json_text({"n": [number]})) == {"n": [number]}


class _Row(msgspec.Struct):
    name: str
    share_mib: float | None


def test_json_text_writes_structs_as_objects_even_through_json_dumps() -> None:
    """`status --json`'s rows are structs; a lone surrogate in one sends all through json.dumps."""
    rows = [_Row("gpu-\ud800", 0.5), _Row("plain", None)]
    expected = '{"rows":[{"name":"gpu-\\ud800","share_mib":0.5},{"name":"plain","share_mib":null}]}'
    assert json_text({"rows": rows}) == expected
    assert json_text({"rows": rows[1:]}) == '{"rows":[{"name":"plain","share_mib":null}]}'


def test_json_text_writes_no_nan() -> None:
    assert json.loads(json_text({"x": float("nan")})) == {"x": None}
