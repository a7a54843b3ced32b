"""A stand-in for an OpenAI-compatible embedder (vLLM's `/v1/embeddings`), backed by the real
WordLlama model, on 127.0.0.1, with faults to inject: the next N requests answer 429 or 500,
a wrong token answers 401. It follows the contract in `../shared/reference/vector-index.md`:
`POST {base}/embeddings` with `{"model", "input": [texts]}` → `{"data": [{"embedding", "index"}]}`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openrag_tui.indexing.embedders.wordllama import load_model

MODEL = "stand-in-embedder"


@dataclass
class Faults:
    """What the next requests get: each count goes down by one per request it answers."""

    too_many: int = 0  # 429
    broken: int = 0  # 500
    token: str | None = None  # when set, a request without `Bearer <token>` gets 401
    requests: int = 0
    batches: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class EmbeddingServer:
    url: str  # the base, `http://127.0.0.1:PORT/v1`
    faults: Faults


@contextmanager
def running_embedder() -> Iterator[EmbeddingServer]:
    model = load_model()
    faults = Faults()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with faults.lock:
                faults.requests += 1
                if faults.token and self.headers.get("Authorization") != f"Bearer {faults.token}":
                    return self._reply(401, {"error": {"message": "invalid API key"}})
                if self.path != "/v1/embeddings":
                    return self._reply(404, {"detail": "Not Found"})
                if faults.too_many:
                    faults.too_many -= 1
                    return self._reply(429, {"error": {"message": "too many requests"}})
                if faults.broken:
                    faults.broken -= 1
                    return self._reply(500, {"error": {"message": "internal error"}})
                texts = body.get("input")
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    refusal = {"error": {"message": "input must be a list of strings"}}
                    return self._reply(400, refusal)
                faults.batches.append(len(texts))
            vectors = model.embed(texts, norm=True)
            data = [{"object": "embedding", "index": i, "embedding": v.tolist()}
                    for i, v in enumerate(vectors)]  # fmt: skip
            self._reply(200, {"object": "list", "data": data, "model": body.get("model", MODEL)})

        def _reply(self, status: int, payload: dict) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield EmbeddingServer(f"http://127.0.0.1:{server.server_port}/v1", faults)
    finally:
        server.shutdown()
        server.server_close()
