"""The `milvus` sink: a document's chunks, with their vectors, as rows of the vector index,
replacing the document's rows as a whole (see `indexing.milvus`)."""

from __future__ import annotations

from openrag_tui.indexing.milvus import row_id, store, text_bytes
from openrag_tui.indexing.sinks import Indexed


class MilvusSink:
    def __init__(self, uri: str, collection: str) -> None:
        self.store = store(uri, collection)

    def write(self, document: Indexed, force: bool) -> tuple[str, bool]:
        rows = [
            {
                "id": row_id(document.partition, document.relative, chunk.index),
                "text": text_bytes(chunk.text),
                "vector": list(vector),
                "partition": document.partition,
                "file_id": document.relative,
                "source": document.source,
                "pages": list(chunk.pages),
                "chunk_index": chunk.index,
                "content_hash": document.content_hash,
                "metadata": document.metadata,
            }
            for chunk, vector in zip(document.chunks, document.vectors, strict=True)
        ]
        self.store.replace(
            document.partition, document.relative, rows, tail=not document.first_write
        )
        return f"{self.store.collection}/{document.partition}/{document.relative}", True

    def forget(self, partition: str, relatives: list[str]) -> int:
        return self.store.forget(partition, relatives)
