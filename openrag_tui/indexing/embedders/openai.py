"""An OpenAI-compatible `/embeddings` endpoint (vLLM, OpenRAG's EMBEDDER_BASE_URL).

Texts go in batches; 429, 5xx, timeouts and refused connections are retried a few times with a
capped, growing pause (a `Retry-After` is honoured up to the cap), after which the embedder is
Unavailable (the file waits, its attempts untouched). Any other answer fails the file with the
server's own words (a DocumentError): the input is what the server refused.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import requests

from openrag_tui.config import redact
from openrag_tui.indexing.embedders import EmbedderConfig
from openrag_tui.indexing.errors import DocumentError, Unavailable

TIMEOUT_SECONDS = 60.0
RETRIES = 4
BACKOFF_START_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
_RETRIED = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIEmbedder:
    def __init__(
        self, config: EmbedderConfig, api_key: str | None, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        if not config.base_url:
            raise Unavailable("OPENRAG_TUI_EMBEDDER=openai needs EMBEDDER_BASE_URL in the .env")
        self.config = config
        self.url = config.base_url.rstrip("/") + "/embeddings"
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "openrag-tui (python-requests)"
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"
        self._dimension: int | None = None

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed(["dimension"])
        assert self._dimension is not None
        return self._dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.config.batch):
            vectors += self._batch(list(texts[start : start + self.config.batch]))
        return vectors

    def _batch(self, texts: list[str]) -> list[list[float]]:
        body: dict[str, Any] = {"input": texts}
        if self.config.model:
            body["model"] = self.config.model
        pause = BACKOFF_START_SECONDS
        why = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                time.sleep(pause)
                pause = min(pause * 2, BACKOFF_MAX_SECONDS)
            try:
                response = self._session.post(self.url, json=body, timeout=self.timeout)
            except requests.RequestException as error:
                why = f"{type(error).__name__}"
                continue
            if response.status_code in _RETRIED:
                why = f"HTTP {response.status_code}"
                pause = max(pause, min(_retry_after(response), BACKOFF_MAX_SECONDS))
                continue
            if response.status_code >= 400:
                raise DocumentError(
                    f"the embedder refused it (HTTP {response.status_code}): "
                    f"{_server_words(response)}"
                )
            return self._vectors(response, len(texts))
        raise Unavailable(
            f"{self.config.where} did not answer after {RETRIES + 1} tries ({why}): "
            "check the server and EMBEDDER_BASE_URL"
        )

    def _vectors(self, response: requests.Response, count: int) -> list[list[float]]:
        try:
            rows = sorted(response.json()["data"], key=lambda row: row.get("index", 0))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (ValueError, KeyError, TypeError) as error:
            raise Unavailable(
                f"{self.config.where} answered something that is not embeddings ({error})"
            ) from None
        if len(vectors) != count or len({len(v) for v in vectors}) != 1:
            raise Unavailable(f"{self.config.where} answered {len(vectors)} vectors for {count}")
        self._dimension = len(vectors[0])
        return vectors


def _retry_after(response: requests.Response) -> float:
    try:
        return float(response.headers.get("Retry-After", "0"))
    except ValueError:
        return 0.0


def _server_words(response: requests.Response) -> str:
    """The server's message (OpenAI's `error.message`, FastAPI's `detail`), else its text."""
    try:
        body = response.json()
    except ValueError:
        return redact(response.text.strip()[:300]) or response.reason
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        message = message or body.get("detail") or body.get("message")
        if message:
            return redact(str(message))[:300]
    return redact(str(body))[:300]
