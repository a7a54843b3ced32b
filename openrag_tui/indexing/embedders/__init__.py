"""Text → vectors: the built-in WordLlama (its weights ship in its wheel, no download) or an
OpenAI-compatible `/embeddings` endpoint (vLLM, OpenRAG's own `EMBEDDER_BASE_URL`).

A batch records which embedder it uses (`EmbedderConfig`), never the API key: the workers read
`EMBEDDER_API_KEY` from the shared .env (or their environment) when they need it. Each process
keeps one embedder per config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from openrag_tui.config import EnvFile, EnvFileError, Settings

WORDLLAMA_MODEL = "l2_supercat"
WORDLLAMA_DIM = 256
DEFAULT_BATCH = 64


@dataclass(frozen=True)
class EmbedderConfig:
    """Which embedder a batch uses; `env_file` is where its API key is read at use time."""

    kind: str  # "wordllama" or "openai"
    model: str | None = None
    base_url: str | None = None
    env_file: str | None = None
    batch: int = DEFAULT_BATCH

    @property
    def identity(self) -> str:
        """What a collection records: vectors of two identities never share a collection."""
        if self.kind == "wordllama":
            return f"wordllama/{WORDLLAMA_MODEL}-{WORDLLAMA_DIM}"
        return f"openai/{self.model or 'default'}"

    @property
    def where(self) -> str:
        """The embedder in words, for messages."""
        if self.kind == "wordllama":
            return "the built-in WordLlama embedder"
        from openrag_tui.config import redact

        return f"the embedder at {redact(self.base_url or '?')} (EMBEDDER_BASE_URL)"


def embedder_config(settings: Settings, env_file: str | None) -> EmbedderConfig:
    return EmbedderConfig(
        kind=settings.embedder_kind,
        model=settings.embedder_model_name,
        base_url=settings.embedder_base_url,
        env_file=env_file,
    )


class Embedder(Protocol):
    config: EmbedderConfig

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; Unavailable when the service does not answer."""
        ...


@cache
def make_embedder(config: EmbedderConfig) -> Embedder:
    """The process's embedder for `config` (loaded once: WordLlama takes ~0.5 s)."""
    if config.kind == "wordllama":
        from openrag_tui.indexing.embedders.wordllama import WordLlamaEmbedder

        return WordLlamaEmbedder(config)
    from openrag_tui.indexing.embedders.openai import OpenAIEmbedder

    return OpenAIEmbedder(config, api_key=_api_key(config.env_file))


def _api_key(env_file: str | None) -> str | None:
    """EMBEDDER_API_KEY from the shared .env, else from the environment."""
    import os

    if env_file:
        try:
            key = EnvFile.read(env_file).values.get("EMBEDDER_API_KEY")
        except EnvFileError:
            key = None
        if key:
            return key
    return os.environ.get("EMBEDDER_API_KEY") or None
