"""The .env against hostile and concurrent input: no lost update, no secret readable during a
save, no expanded secret written back, nothing shown unmasked, no hang on a strange file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from openrag_tui.config import (
    MASK,
    EnvFile,
    EnvFileError,
    Settings,
    is_secret,
    mask_value,
    redact,
    set_env_values,
)
from openrag_tui.config.envfile import MAX_BYTES
from tests.support.cli import run_cli

SECRET = "sk-live-0123456789abcdef"


def _env_set_processes(path: Path, count: int) -> list[subprocess.Popen[str]]:
    argv = [sys.executable, "-m", "openrag_tui"]
    return [
        subprocess.Popen(
            [*argv, "env", "set", f"K{i}=v{i}", "--add", "--env", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "XDG_STATE_HOME": str(path.parent)},
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_env_set_loses_no_update(tmp_path: Path, round_: int) -> None:
    """Ten `env set` at once: every one that exits 0 has its key in the file (and all do)."""
    path = tmp_path / ".env"
    path.write_text("# shared\nRAY_POOL_SIZE=1\n")
    processes = _env_set_processes(path, 10)
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in processes]
    values = EnvFile.read(path).values
    for i, (code, _out, err) in enumerate(results):
        assert code == 0, err
        assert values.get(f"K{i}") == f"v{i}"
    assert values["RAY_POOL_SIZE"] == "1" and path.read_text().startswith("# shared\n")
    assert not list(tmp_path.glob(".*.lock")) and not list(tmp_path.glob(".*.tmp"))


def test_a_writer_that_died_holding_the_lock_does_not_block_the_next(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("RAY_POOL_SIZE=1\n")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    import socket

    (tmp_path / ".env.lock").write_text(f"{socket.gethostname()} {dead} abc\n")
    set_env_values(EnvFile.read(path), {"RAY_POOL_SIZE": "3"})
    assert EnvFile.read(path).values["RAY_POOL_SIZE"] == "3"


@pytest.mark.parametrize(("original", "expected"), [(0o600, 0o600), (0o640, 0o640)])
def test_the_temporary_file_is_private_before_a_byte_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, original: int, expected: int
) -> None:
    """Watch every write of the save: the temp file holding the secret already has the
    original's mode (never 0644) when the secret lands in it."""
    path = tmp_path / ".env"
    path.write_text(f"EMBEDDER_API_KEY={SECRET}\n")
    path.chmod(original)
    seen: list[int] = []
    real_fdopen = os.fdopen

    def watching_fdopen(fd: int, *args, **kwargs):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):  # the file about to be written
            seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", watching_fdopen)
    EnvFile.read(path).save({"RAY_POOL_SIZE": "2"})
    monkeypatch.undo()
    assert seen == [expected, expected]  # the backup's temp file, then the new .env's
    for saved in (path, tmp_path / ".env.bak"):
        assert stat.S_IMODE(saved.stat().st_mode) == expected


def test_a_missing_file_is_not_created_by_env_set(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / ".env"
    result = run_cli("env", "set", "RAY_POOL_SIZE=2", env_file=missing)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not missing.exists()


INTERPOLATED = f"EMBEDDER_API_KEY={SECRET}\nEMBEDDER_HEADER=Bearer ${{EMBEDDER_API_KEY}}\n"


def test_show_and_json_give_the_raw_text_and_mask_what_interpolates_a_secret(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".env"
    path.write_text(INTERPOLATED)
    shown = run_cli("env", "show", env_file=path)
    as_json = run_cli("env", "show", "--json", env_file=path)
    assert SECRET not in shown.stdout + shown.stderr + as_json.stdout + as_json.stderr
    values = json.loads(as_json.stdout)["values"]
    assert values["EMBEDDER_API_KEY"] == MASK and values["EMBEDDER_HEADER"] == MASK
    assert Settings.from_envfile(EnvFile.read(path)).raw["EMBEDDER_HEADER"] == f"Bearer {SECRET}"


def test_saving_another_key_never_writes_an_expanded_value_back(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(INTERPOLATED)
    env = EnvFile.read(path)
    assert env.raw_values["EMBEDDER_HEADER"] == "Bearer ${EMBEDDER_API_KEY}"
    set_env_values(env, {"RAY_POOL_SIZE": "2"})
    assert path.read_text() == INTERPOLATED + "RAY_POOL_SIZE=2\n"


@pytest.mark.parametrize(
    "key",
    ["DB_PASS", "ADMIN_PASSWD", "GCP_CREDENTIALS", "APP_SECRET", "AUTH_TOKEN", "MY_PWD", "hf_Key"],
)
def test_secret_names(key: str) -> None:
    assert is_secret(key) and mask_value(key, "x") == MASK


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:pw@host:8000/v1", f"http://user:{MASK}@host:8000/v1"),
        ("https://ghp_token@github.example/x", f"https://{MASK}@github.example/x"),
        ("see http://a:b@h and ray://c:d@e:1", f"see http://a:{MASK}@h and ray://c:{MASK}@e:1"),
        ("http://host:8000/v1", "http://host:8000/v1"),
        ("user@host", "user@host"),
    ],
)
def test_credentials_in_urls_are_masked_wherever_text_is_shown(text: str, shown: str) -> None:
    assert redact(text) == shown
    assert mask_value("EMBEDDER_BASE_URL", text) == shown


def test_no_message_repeats_a_url_password(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("RAY_POOL_SIZE=1\n")
    for args in (
        ("env", "set", "EMBEDDER_BASE_URL=http://user:hunter2@<HOST>:8000/v1"),
        ("env", "set", "EMBEDDER_BASE_URL=http://user:hunter2@bad_host:8000/v1"),
        ("env", "set", "OPENRAG_TUI_DASHBOARD_URL=http://user:hunter2@host:0"),
        ("status", "--dashboard", "http://user:hunter2@127.0.0.1:9"),
        ("status", "--json", "--dashboard", "http://user:hunter2@127.0.0.1:9"),
    ):
        result = run_cli(*args, env_file=path, timeout=60)
        assert result.returncode in (2, 3), result.stderr
        assert "hunter2" not in result.stdout + result.stderr, args
    path.write_text("EMBEDDER_BASE_URL=http://user:hunter2@vllm:8000/v1\n")
    for args in (("env", "show"), ("env", "show", "--json"), ("env", "check")):
        result = run_cli(*args, env_file=path)
        assert "hunter2" not in result.stdout + result.stderr
        assert "user:" in result.stdout or args[1] == "check"  # shown, password masked


def test_a_huge_env_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("".join(f"K{i}=${{K{i - 1}}}x\n" for i in range(MAX_BYTES // 8)))
    result = run_cli("env", "check", env_file=path, timeout=30)
    assert result.returncode == 2 and "over 1 MiB is refused" in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_strange_files_are_refused_without_hanging(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "strange"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    else:
        path.mkdir()
    with pytest.raises(EnvFileError, match=r"not a regular file|is a folder"):
        EnvFile.read(path)
    result = run_cli("env", "show", env_file=path, timeout=30)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_a_large_file_with_many_interpolations_is_read_in_linear_time(tmp_path: Path) -> None:
    """python-dotenv's own expansion copies the environment per key: quadratic; ours is one pass
    over the same parser, with the same result."""
    from dotenv import dotenv_values

    text = "".join(f"K{i}=${{K{i - 1}:-x}}{i}\n" for i in range(3000))
    path = tmp_path / ".env"
    path.write_text(text)
    assert EnvFile.read(path).values == dict(dotenv_values(path))
