"""Joining the cluster as a driver, quietly: which address, in which namespace, and with Ray's
output sent to the log file instead of the terminal the panel draws on.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import ray

import openrag_tui
from openrag_tui.config import Settings
from openrag_tui.pools.errors import ClusterUnreachable

PACKAGE_DIR = os.path.dirname(openrag_tui.__file__)
CONNECT_CHECK_SECONDS = 3.0

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Connection:
    address: str
    source: str  # --address, RAY_HEAD_ADDRESS, RAY_ADDRESS or auto
    namespace: str


def resolve_address(
    cli_address: str | None, settings: Settings, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """`--address` > `RAY_HEAD_ADDRESS` > `RAY_ADDRESS` > `auto`; a variable comes from the .env,
    else from the environment. Returns the address and where it came from."""
    environ = os.environ if environ is None else environ
    candidates = (
        ("--address", cli_address),
        ("RAY_HEAD_ADDRESS", settings.ray_head_address or environ.get("RAY_HEAD_ADDRESS")),
        ("RAY_ADDRESS", settings.ray_address or environ.get("RAY_ADDRESS")),
    )
    return next(((value, source) for source, value in candidates if value), ("auto", "auto"))


def connect(
    settings: Settings, address: str | None = None, *, silence_fds: bool = False
) -> Connection:
    """Join the cluster as a driver in the .env's namespace (once; later calls reuse it).

    Our package travels with the supervisors (`py_modules`), so nodes need not have openrag-tui
    installed. Ray's logs go to the root logger (the log file), never to the terminal;
    `silence_fds` also hides what Ray's C++ core writes to fds 1 and 2 while connecting. The CLI
    sets it; the panel must not: Textual draws on those fds.
    """
    target, source = resolve_address(address, settings)
    if ray.is_initialized():
        if ray.get_runtime_context().namespace == settings.namespace:
            return Connection(target, source, settings.namespace)
        ray.shutdown()
    _check_reachable(target, source)
    _ray_logs_to_root()
    captured = io.StringIO()
    quiet = _fds_to_log() if silence_fds else contextlib.nullcontext()
    try:
        with quiet, contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            ray.init(
                address=target,
                namespace=settings.namespace,
                log_to_driver=False,
                logging_level="ERROR",
                runtime_env={"py_modules": [PACKAGE_DIR]},
            )
    except Exception as error:
        raise ClusterUnreachable(f"cannot join Ray at {target} (from {source}): {error}") from None
    finally:
        if captured.getvalue():
            _log.info("ray.init said: %s", captured.getvalue())
    return Connection(target, source, settings.namespace)


def _check_reachable(address: str, source: str) -> None:
    """Fail in seconds: `ray.init` waits minutes on an address where nothing listens."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        with socket.create_connection((parts.hostname, parts.port), CONNECT_CHECK_SECONDS):
            pass
    except (OSError, ValueError, TypeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ClusterUnreachable(
            f"cannot reach Ray at {address} (from {source}): {reason}"
        ) from None


def _ray_logs_to_root() -> None:
    """Ray's logger writes to stderr by itself; send it where the root logger writes instead."""
    ray_logger = logging.getLogger("ray")
    for handler in list(ray_logger.handlers):
        ray_logger.removeHandler(handler)
    ray_logger.propagate = True


@contextlib.contextmanager
def _fds_to_log() -> Iterator[None]:
    """Point fds 1 and 2 at a temporary file, then log what landed there."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as sink:
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            if text:
                _log.info("Ray wrote while connecting: %s", text)
