"""What a CLI call writes: its JSON as `json.dumps` would (compact), whatever the text holds."""

from __future__ import annotations

import json

import pytest

from openrag_tui.cli.common import json_text


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


def test_json_text_writes_no_nan() -> None:
    assert json.loads(json_text({"x": float("nan")})) == {"x": None}
