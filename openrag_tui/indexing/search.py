"""Hybrid search over one partition of the vector index (dense + BM25, fused by reciprocal
rank): the CLI's `search` and the panel's search screen both call `search`."""

from __future__ import annotations

from dataclasses import dataclass

from openrag_tui.config import Settings
from openrag_tui.indexing.batch import check_partition
from openrag_tui.indexing.embedders import embedder_config, make_embedder
from openrag_tui.indexing.errors import BadInput
from openrag_tui.indexing.milvus import Hit, store

MAX_TOP = 100
MAX_QUERY_CHARS = 2000


@dataclass(frozen=True)
class Results:
    query: str
    partition: str
    hits: tuple[Hit, ...]

    def to_dict(self) -> dict:
        return {
            "query": self.query,
            "partition": self.partition,
            "results": [
                {
                    "rank": hit.rank,
                    "score": hit.score,
                    "source": hit.source,
                    "file_id": hit.file_id,
                    "pages": list(hit.pages),
                    "chunk_index": hit.chunk_index,
                    "text": hit.text,
                }
                for hit in self.hits
            ],
        }


def search(
    settings: Settings, partition: str, query: str, top: int = 5, env_file: str | None = None
) -> Results:
    """The `top` chunks of the partition for `query`; BadInput on an empty query, Unavailable
    when the store or the embedder does not answer, EmbedderMismatch when the .env's embedder
    is not the one the collection was made with (its vectors would not compare)."""
    check_partition(partition)
    query = query.strip()
    if not query:
        raise BadInput("the query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise BadInput(f"the query is over {MAX_QUERY_CHARS} characters")
    if not 1 <= top <= MAX_TOP:
        raise BadInput(f"--top must be from 1 to {MAX_TOP}")
    index = store(settings.vdb_uri, settings.collection)
    embedder = make_embedder(embedder_config(settings, env_file))
    index.check_embedder(embedder.config.identity)
    vector = embedder.embed([query])[0]
    return Results(query, partition, tuple(index.hybrid_search(partition, vector, query, top)))
