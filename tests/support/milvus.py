"""A real Milvus Lite server for tests: its own free port and data folder, always stopped.

It is the same Milvus Lite server (`cluster/milvus_server.py`) that `openrag-tui up --local` starts,
run through the product's own start and stop, so the tests exercise them too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from openrag_tui.cluster import vectordb
from tests.support.raycluster import free_port


@dataclass(frozen=True)
class MilvusServer:
    host: str
    port: int
    data_dir: Path

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> str:
        """The .env lines that point at it."""
        return f"VDB_HOST={self.host}\nVDB_PORT={self.port}\n"


@contextmanager
def running_milvus() -> Iterator[MilvusServer]:
    folder = Path(tempfile.mkdtemp(prefix="ortui-milvus-", dir="/tmp"))
    server = vectordb.Embedded(
        host="127.0.0.1",
        port=free_port(),
        data_dir=folder / "data",
        record=folder / "server.json",
        log=folder / "server.log",
    )
    vectordb.start(server, lambda _line: None)
    try:
        yield MilvusServer(server.host, server.port, server.data_dir)
    finally:
        vectordb.stop(server)
