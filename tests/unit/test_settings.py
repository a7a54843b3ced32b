"""The typed view of the .env: every rule, its line, and edits refused before they break it."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from openrag_tui.config import (
    FIELDS,
    EnvEditRefused,
    EnvFile,
    Settings,
    Severity,
    is_secret,
    mask_value,
    set_env_values,
)

GUIDE = Path(__file__).resolve().parent.parent / "data" / "guide.env"
ERROR, WARNING = Severity.ERROR, Severity.WARNING


def settings_with(key: str, value: str, folder: Path) -> Settings:
    """Settings of a file whose second line sets ``key`` (quoted as the editor would)."""
    env = EnvFile(folder / ".env", "# header\n")
    return Settings.from_envfile(EnvFile(env.path, env.with_updates({key: value})))


@pytest.fixture
def guide_copy(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    shutil.copyfile(GUIDE, path)
    return path


# --- defaults and the field table ---------------------------------------------------------------


def test_no_file_means_openrag_defaults() -> None:
    assert Settings.from_values({}) == Settings()
    assert Settings().problems == ()


def test_field_table_matches_the_dataclass() -> None:
    names = {f.name for f in dataclasses.fields(Settings)} - {"problems", "raw", "invalid"}
    assert {info.field for info in FIELDS.values()} == names
    defaults = Settings()
    for env, info in FIELDS.items():
        assert Settings.env_key(info.field) == env
        assert getattr(defaults, info.field) == info.default
        assert info.default is None or isinstance(info.default, info.type)
        assert info.description.endswith(".")
    assert Settings.FIELDS is FIELDS


def test_guide_values_are_typed() -> None:
    settings = Settings.from_envfile(EnvFile.read(GUIDE))
    assert settings.marker_max_processes == 5  # `5 # Number of subprocesses` is 5
    assert settings.marker_num_gpus == 0.6
    assert settings.ray_dashboard_port == 8265
    assert settings.shared_env == "/ray_mount/.env"
    assert settings.raw["RAY_task_retry_delay_ms"] == "3000"  # unknown keys kept


def test_guide_placeholders_are_errors_and_mount_paths_warnings() -> None:
    settings = Settings.from_envfile(EnvFile.read(GUIDE))
    assert [(p.variable, p.line) for p in settings.errors] == [
        ("RAY_ADDRESS", 16),
        ("HEAD_NODE_IP", 17),
        ("RAY_HEAD_ADDRESS", 18),
    ]
    assert all("placeholder 'X.X.X.X'" in p.message for p in settings.errors)
    volumes = [("DATA_VOLUME", 23), ("MODEL_WEIGHTS_VOLUME", 24), ("CONFIG_VOLUME", 25)]
    missing = [(k, n) for k, n in volumes if not Path(settings.raw[k] or "").exists()]
    assert [(p.variable, p.line) for p in settings.warnings] == missing


def test_unknown_keys_are_kept_and_ignored() -> None:
    settings = Settings.from_values({"FOO": "bar", "EMPTY": None})
    assert dict(settings.raw) == {"FOO": "bar", "EMPTY": None}
    assert settings.problems == ()


# --- every rule -----------------------------------------------------------------------------

RULES = [
    # key, value, severity (None: valid), words expected in the message
    ("RAY_NUM_GPUS", "abc", ERROR, "RAY_NUM_GPUS must be a number greater than 0 (got 'abc')."),
    ("RAY_NUM_GPUS", "0", ERROR, "greater than 0"),
    ("RAY_NUM_GPUS", "-0.5", ERROR, "greater than 0"),
    ("RAY_NUM_GPUS", "nan", ERROR, "greater than 0"),
    ("RAY_NUM_GPUS", "inf", ERROR, "greater than 0"),
    ("RAY_NUM_GPUS", "", ERROR, "greater than 0"),
    ("RAY_NUM_GPUS", "1.5", ERROR, "RAY_NUM_GPUS above 1 must be a whole number of GPUs"),
    ("RAY_NUM_GPUS", "0.25", None, ""),
    ("RAY_NUM_GPUS", "1", None, ""),
    ("RAY_NUM_GPUS", "2", None, ""),
    ("RAY_NUM_GPUS", " 0.5 ", None, ""),
    ("MARKER_NUM_GPUS", "0", ERROR, "greater than 0"),
    ("MARKER_NUM_GPUS", "2.5", ERROR, "whole number of GPUs"),
    ("MARKER_NUM_GPUS", "0.01", None, ""),
    ("RAY_POOL_SIZE", "-1", ERROR, "RAY_POOL_SIZE must be a whole number of 0 or more (got '-1')."),
    ("RAY_POOL_SIZE", "1.5", ERROR, "whole number of 0 or more"),
    ("RAY_POOL_SIZE", "2.0", ERROR, "whole number of 0 or more"),
    ("RAY_POOL_SIZE", "two", ERROR, "whole number of 0 or more"),
    ("RAY_POOL_SIZE", "0", None, ""),
    ("RAY_POOL_SIZE", "1_000", None, ""),
    ("MARKER_POOL_SIZE", "-2", ERROR, "whole number of 0 or more"),
    ("MARKER_POOL_SIZE", "0", None, ""),
    ("RAY_MAX_TASKS_PER_WORKER", "0", ERROR, "whole number of 1 or more"),
    ("RAY_MAX_TASKS_PER_WORKER", "1", None, ""),
    ("MARKER_MAX_PROCESSES", "0", ERROR, "whole number of 1 or more"),
    ("MARKER_MAX_TASKS_PER_CHILD", "0", ERROR, "whole number of 1 or more"),
    ("MARKER_MAX_TASKS_PER_CHILD", "x", ERROR, "whole number of 1 or more"),
    ("MARKER_MIN_PROCESSES", "-1", ERROR, "whole number of 0 or more"),
    ("MARKER_MIN_PROCESSES", "0", None, ""),
    ("RAY_DASHBOARD_PORT", "0", ERROR, "must use a port from 1 to 65535 (got '0')."),
    ("RAY_DASHBOARD_PORT", "65536", ERROR, "port from 1 to 65535"),
    ("RAY_DASHBOARD_PORT", "http", ERROR, "port from 1 to 65535"),
    ("RAY_DASHBOARD_PORT", "8265", None, ""),
    ("VDB_PORT", "70000", ERROR, "port from 1 to 65535"),
    ("VDB_PORT", "19530", None, ""),
    ("RAY_ADDRESS", "ray://10.0.0.1:10001", None, ""),
    ("RAY_ADDRESS", "10.0.0.1:6379", None, ""),
    ("RAY_ADDRESS", "auto", None, ""),
    ("RAY_ADDRESS", "ray://[::1]:10001", None, ""),
    ("RAY_ADDRESS", "", None, ""),
    ("RAY_ADDRESS", "ray://head", ERROR, "must look like ray://host:port, host:port or auto"),
    ("RAY_ADDRESS", "http://head:10001", ERROR, "must look like ray://host:port"),
    ("RAY_ADDRESS", "ray://head:0", ERROR, "port from 1 to 65535"),
    ("RAY_ADDRESS", "ray://head:70000", ERROR, "port from 1 to 65535"),
    ("RAY_ADDRESS", "ray://X.X.X.X:10001", ERROR, "placeholder 'X.X.X.X': replace it"),
    ("RAY_ADDRESS", "ray://<HEAD-IP>:10001", ERROR, "placeholder '<HEAD-IP>'"),
    ("RAY_ADDRESS", "x.x.x.x:10001", ERROR, "placeholder 'x.x.x.x'"),
    ("RAY_HEAD_ADDRESS", "10.0.0.1:6379", None, ""),
    ("RAY_HEAD_ADDRESS", "ray://10.0.0.1:6379", ERROR, "RAY_HEAD_ADDRESS must look like host:port"),
    ("RAY_HEAD_ADDRESS", "10.0.0.1", ERROR, "must look like host:port"),
    ("RAY_HEAD_ADDRESS", "10.0.0.1:99999", ERROR, "port from 1 to 65535"),
    ("RAY_HEAD_ADDRESS", "X.X.X.X:6379", ERROR, "placeholder"),
    ("HEAD_NODE_IP", "X.X.X.X", ERROR, "HEAD_NODE_IP still holds the placeholder 'X.X.X.X'"),
    ("HEAD_NODE_IP", "<HOST-IP>", ERROR, "placeholder '<HOST-IP>'"),
    ("HEAD_NODE_IP", "10.0.0.1", None, ""),
    ("EMBEDDER_BASE_URL", "http://<HOST-IP>:8000/v1", ERROR, "placeholder '<HOST-IP>'"),
    ("EMBEDDER_BASE_URL", "http://10.0.0.1:0/v1", ERROR, "port from 1 to 65535"),
    ("EMBEDDER_BASE_URL", "http://10.0.0.1:99999/v1", ERROR, "port from 1 to 65535"),
    ("EMBEDDER_BASE_URL", "http://10.0.0.1:8000/v1", None, ""),
    ("VDB_HOST", "<HOST-IP>", ERROR, "placeholder"),
    ("VDB_HOST", "10.0.0.2", None, ""),
    ("VDB_HOST", "milvus", None, ""),
    ("VDB_HOST", "milvus.internal.example.com.", None, ""),
    ("VDB_HOST", "not a host", ERROR, "VDB_HOST must name a host: an IP address or a hostname"),
    ("VDB_HOST", "-bad.example", ERROR, "must name a host"),
    ("VDB_HOST", "under_score", ERROR, "must name a host"),
    ("VDB_HOST", "1.2.3", ERROR, "must name a host"),
    ("HEAD_NODE_IP", "not an ip", ERROR, "HEAD_NODE_IP must name a host"),
    ("HEAD_NODE_IP", "head-0.cluster.local", None, ""),
    ("HEAD_NODE_IP", "fe80::1", None, ""),
    ("OPENRAG_TUI_DASHBOARD_HOST", "0.0.0.0", None, ""),
    ("OPENRAG_TUI_DASHBOARD_HOST", "a host", ERROR, "must name a host"),
    ("RAY_HEAD_ADDRESS", "bad host:6379", ERROR, "must"),
    ("RAY_HEAD_ADDRESS", "head_1:6379", ERROR, "must name a host"),
    ("RAY_ADDRESS", "ray://not_valid:10001", ERROR, "must name a host"),
    ("EMBEDDER_BASE_URL", "http://bad_host:8000/v1", ERROR, "must name a host"),
    ("EMBEDDER_BASE_URL", "vllm:8000/v1", ERROR, "must look like http://host:port/path"),
    ("OPENRAG_TUI_DASHBOARD_URL", "http://bad_host:8265", ERROR, "must name a host"),
    ("OPENRAG_TUI_REFRESH_SECONDS", "0", ERROR, "greater than 0"),
    ("OPENRAG_TUI_REFRESH_SECONDS", "soon", ERROR, "greater than 0"),
    ("OPENRAG_TUI_REFRESH_SECONDS", "0.5", None, ""),
    ("OPENRAG_TUI_POOL_NUM_CPUS", "-0.1", ERROR, "must be a number of 0 or more"),
    ("OPENRAG_TUI_POOL_NUM_CPUS", "0", None, ""),
    ("OPENRAG_TUI_DASHBOARD_URL", "10.0.0.1:8265", ERROR, "must look like http://host:port"),
    ("OPENRAG_TUI_DASHBOARD_URL", "ftp://head", ERROR, "must look like http://host:port"),
    ("OPENRAG_TUI_DASHBOARD_URL", "http://head:8265/x", ERROR, "must look like http://host:port"),
    ("OPENRAG_TUI_DASHBOARD_URL", "http://head:0", ERROR, "port from 1 to 65535"),
    ("OPENRAG_TUI_DASHBOARD_URL", "http://10.0.0.1:8265", None, ""),
    ("OPENRAG_TUI_DASHBOARD_URL", "https://dash.example.com/", None, ""),
]


@pytest.mark.parametrize(("key", "value", "severity", "words"), RULES)
def test_rule(key: str, value: str, severity: Severity | None, words: str, tmp_path: Path) -> None:
    settings = settings_with(key, value, tmp_path)
    found = [(p.variable, p.line, p.severity) for p in settings.problems]
    if severity is None:
        assert found == []
        return
    assert found == [(key, 2, severity)]
    assert words in settings.problems[0].message
    assert settings.problems[0].message.endswith(".")
    field = FIELDS[key]
    assert getattr(settings, field.field) == field.default  # a bad value keeps the default


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("MARKER_MAX_PROCESSES=2\nMARKER_MIN_PROCESSES=3\n", 2),
        ("MARKER_MIN_PROCESSES=3\nMARKER_MAX_PROCESSES=2\n", 1),
        ("# max defaults to 2\nMARKER_MIN_PROCESSES=3\n", 2),
    ],
)
def test_min_processes_above_max_is_an_error_on_min(text: str, line: int) -> None:
    settings = Settings.from_envfile(EnvFile(Path("/x/.env"), text))
    assert [(p.variable, p.line, p.severity) for p in settings.problems] == [
        ("MARKER_MIN_PROCESSES", line, ERROR)
    ]
    assert settings.problems[0].message == (
        "MARKER_MIN_PROCESSES (3) must not exceed MARKER_MAX_PROCESSES (2)."
    )


def test_no_cross_field_error_on_top_of_a_type_error() -> None:
    settings = Settings.from_values({"MARKER_MIN_PROCESSES": "3", "MARKER_MAX_PROCESSES": "0"})
    assert [p.variable for p in settings.problems] == ["MARKER_MAX_PROCESSES"]


@pytest.mark.parametrize("key", ["DATA_VOLUME", "MODEL_WEIGHTS_VOLUME", "CONFIG_VOLUME"])
def test_missing_volume_is_a_warning(key: str, tmp_path: Path) -> None:
    settings = settings_with(key, "./nowhere", tmp_path)
    assert [(p.variable, p.line, p.severity) for p in settings.problems] == [(key, 2, WARNING)]
    assert settings.errors == []


@pytest.mark.parametrize("value", ["./data", "data", "{tmp}/data", "~"])
def test_existing_volume_relative_to_the_file_is_fine(value: str, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    settings = settings_with("DATA_VOLUME", value.format(tmp=tmp_path), tmp_path)
    assert settings.problems == ()


def test_interpolated_value_is_validated() -> None:
    text = "HEAD=X.X.X.X\nRAY_ADDRESS=ray://${HEAD}:10001\n"
    settings = Settings.from_envfile(EnvFile(Path("/x/.env"), text))
    assert [(p.variable, p.line) for p in settings.errors] == [("RAY_ADDRESS", 2)]


# --- the one editing entry point ------------------------------------------------------------


def assert_refused(path: Path, updates: dict[str, str]) -> EnvEditRefused:
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    with pytest.raises(EnvEditRefused) as refused:
        set_env_values(EnvFile.read(path), updates)
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before
    assert not path.with_name(path.name + ".bak").exists()
    return refused.value


def test_set_saves_and_returns_the_new_file(guide_copy: Path) -> None:
    env = set_env_values(EnvFile.read(guide_copy), {"RAY_POOL_SIZE": "4", "VDB_PORT": "19531"})
    assert env.values["RAY_POOL_SIZE"] == "4"
    assert EnvFile.read(guide_copy).values["VDB_PORT"] == "19531"
    assert Settings.from_envfile(env).ray_pool_size == 4


def test_invalid_value_is_refused_and_file_untouched(guide_copy: Path) -> None:
    refused = assert_refused(guide_copy, {"RAY_NUM_GPUS": "abc"})
    assert [(p.variable, p.line, p.severity) for p in refused.problems] == [
        ("RAY_NUM_GPUS", 3, ERROR)
    ]
    assert str(refused) == "RAY_NUM_GPUS must be a number greater than 0 (got 'abc')."


@pytest.mark.parametrize("key", ["1BAD", "A-B", "", "A B", "ÉTÉ"])
def test_invalid_key_is_refused(key: str, guide_copy: Path) -> None:
    refused = assert_refused(guide_copy, {key: "1"})
    assert [p.variable for p in refused.problems] == [key]
    assert "not a valid variable name" in refused.problems[0].message


@pytest.mark.parametrize("value", ["a\nb", "a\r\nb", "a\rb"])
def test_value_with_line_break_is_refused(value: str, guide_copy: Path) -> None:
    refused = assert_refused(guide_copy, {"UV_LINK_MODE": value})
    assert [(p.variable, p.line) for p in refused.problems] == [("UV_LINK_MODE", 26)]


def test_cross_field_error_introduced_by_the_edit_is_refused(guide_copy: Path) -> None:
    refused = assert_refused(guide_copy, {"MARKER_MAX_PROCESSES": "2"})  # guide's min is 3
    assert [(p.variable, p.line) for p in refused.problems] == [("MARKER_MIN_PROCESSES", 10)]


def test_error_introduced_through_interpolation_is_refused(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("HEAD=10.0.0.1\nRAY_ADDRESS=ray://${HEAD}:10001\n")
    refused = assert_refused(path, {"HEAD": "X.X.X.X"})
    assert [p.variable for p in refused.problems] == ["RAY_ADDRESS"]


def test_several_keys_are_checked_together(guide_copy: Path) -> None:
    env = set_env_values(
        EnvFile.read(guide_copy), {"MARKER_MIN_PROCESSES": "6", "MARKER_MAX_PROCESSES": "8"}
    )
    assert Settings.from_envfile(env).marker_min_processes == 6


def test_existing_unrelated_errors_do_not_block_an_edit(guide_copy: Path) -> None:
    env = set_env_values(EnvFile.read(guide_copy), {"RAY_POOL_SIZE": "2"})
    assert len(Settings.from_envfile(env).errors) == 3  # the guide's placeholders remain


def test_placeholder_can_be_fixed_but_not_written(guide_copy: Path) -> None:
    assert_refused(guide_copy, {"VDB_HOST": "<HOST-IP>"})
    env = set_env_values(EnvFile.read(guide_copy), {"HEAD_NODE_IP": "10.0.0.1"})
    assert "HEAD_NODE_IP" not in {p.variable for p in Settings.from_envfile(env).errors}


def test_refused_new_key_has_no_line(guide_copy: Path) -> None:
    refused = assert_refused(guide_copy, {"VDB_PORT": "0"})
    assert [(p.variable, p.line) for p in refused.problems] == [("VDB_PORT", None)]


# --- masking ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("EMBEDDER_API_KEY", True),
        ("hf_token", True),
        ("DB_PASSWORD", True),
        ("My_Secret_Thing", True),
        ("RAY_NUM_GPUS", False),
        ("EMBEDDER_BASE_URL", False),
    ],
)
def test_is_secret(key: str, secret: bool) -> None:
    assert is_secret(key) is secret


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("EMBEDDER_API_KEY", "sk-abc123", "••••••"),
        ("EMBEDDER_API_KEY", "x", "••••••"),
        ("EMBEDDER_API_KEY", None, None),
        ("EMBEDDER_API_KEY", "", ""),
        ("VDB_HOST", "milvus", "milvus"),
    ],
)
def test_mask_value(key: str, value: str | None, shown: str | None) -> None:
    assert mask_value(key, value) == shown
