"""The vector index: a Milvus collection (a Milvus server, or the embedded Milvus Lite server),
hybrid like OpenRAG's: a dense `vector` (COSINE) and a `sparse` vector that Milvus's BM25
function makes from `text`; `partition` is the partition key.

One row per chunk, its `id` deterministic (a digest of partition and file, and the chunk's
index), so indexing a document again replaces its rows: all its chunks in one upsert, then the
rows beyond its new length deleted. The collection records its embedder and dimension, and a
batch with another embedder is refused: vectors of two models never share a collection.

pymilvus is imported lazily (it loads pandas and pyarrow), with python-dotenv's automatic
`.env` loading off for that import, and its stderr handlers sent to our log instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from openrag_tui.config import redact
from openrag_tui.indexing.errors import DocumentError, Unavailable

EMBEDDER_PROPERTY = "openrag_tui.embedder"
DIMENSION_PROPERTY = "openrag_tui.dimension"
TIMEOUT_SECONDS = 10.0
#: rows per upsert request: a document above it is written in several
UPSERT_ROWS = 2000
MAX_TEXT_BYTES = 65535
#: English's stop words as Lucene and Elasticsearch's `_english_` list them: BM25 skips them in
#: the text and in queries. They are in nearly every chunk, and Milvus Lite scores a query term
#: by walking its whole posting list in Python (measured at 100,000 chunks: BM25 720 ms with
#: them, see docs/benchmarks.md); their weight in a ranking is nil anyway.
STOP_WORDS = (
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with",
)  # fmt: skip
ANALYZER = {
    "tokenizer": "standard",
    "filter": ["lowercase", {"type": "stop", "stop_words": list(STOP_WORDS)}],
}
MAX_PATH = 4096
#: no keepalive pings on an idle connection: Milvus Lite's gRPC server keeps gRPC's defaults (a
#: ping every 5 minutes at most, none without a call), answers pymilvus's default (every 10 s,
#: calls or not) with GOAWAY "too many pings", and every later connection of the process fails
GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": 0, "grpc.keepalive_time_ms": 300_000}
OUTPUT_FIELDS = ["text", "file_id", "source", "pages", "chunk_index", "partition", "metadata"]
_import_lock = threading.Lock()


def pymilvus() -> Any:
    """The pymilvus module, imported once, quietly (see the module's doc)."""
    with _import_lock:
        previous = os.environ.get("PYTHON_DOTENV_DISABLED")
        os.environ["PYTHON_DOTENV_DISABLED"] = "1"  # its settings module calls load_dotenv()
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        try:
            import pymilvus as module
        finally:
            if previous is None:
                os.environ.pop("PYTHON_DOTENV_DISABLED", None)
            else:
                os.environ["PYTHON_DOTENV_DISABLED"] = previous
        for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer"):
            logger = logging.getLogger(name)
            logger.handlers.clear()  # its own stderr handler: our log file instead
            logger.propagate = True
        logging.getLogger("pymilvus").setLevel(logging.WARNING)
        logging.getLogger("grpc").setLevel(logging.CRITICAL)
        return module


def row_id(partition: str, file_id: str, chunk_index: int) -> str:
    """The chunk's id: the same document's same chunk always has the same one."""
    digest = hashlib.sha256(f"{partition}\0{file_id}".encode()).hexdigest()[:32]
    return f"{digest}:{chunk_index}"


def quoted(text: str) -> str:
    """A string literal for a Milvus filter expression."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    text: str
    file_id: str
    source: str
    pages: tuple[int, ...]
    chunk_index: int
    partition: str


@dataclass(frozen=True)
class Description:
    """What the collection holds, for `status` and the panel."""

    uri: str
    collection: str
    exists: bool
    embedder: str | None
    dimension: int | None
    chunks: int


class Store:
    """One collection of one Milvus server; every failure to reach it is Unavailable."""

    def __init__(self, uri: str, collection: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.uri = uri
        self.collection = collection
        self.timeout = timeout
        self._client: Any = None
        self._loaded = False
        self._ensured: tuple[str, int] | None = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"the vector store at {redact(self.uri)} (VDB_HOST, VDB_PORT)"

    # connecting

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._call(
                    lambda: pymilvus().MilvusClient(
                        uri=self.uri, timeout=self.timeout, grpc_options=GRPC_OPTIONS
                    )
                )
            return self._client

    def _call(self, do: Any) -> Any:
        """Run a pymilvus call; a server that does not answer becomes Unavailable."""
        module = pymilvus()
        try:
            return do()
        except module.exceptions.MilvusException as error:
            if _unreachable(error):
                self._client, self._loaded, self._ensured = None, False, None
                raise Unavailable(f"{self.where} does not answer ({_said(error)})") from None
            raise
        except OSError as error:
            raise Unavailable(f"{self.where} does not answer ({error})") from None

    # the collection

    def describe(self) -> Description:
        client = self.client()
        if not self._call(lambda: client.has_collection(self.collection)):
            return Description(self.uri, self.collection, False, None, None, 0)
        properties = self._properties()
        rows = self._call(
            lambda: client.query(self.collection, filter="", output_fields=["count(*)"])
        )
        dimension = properties.get(DIMENSION_PROPERTY)
        return Description(
            self.uri,
            self.collection,
            True,
            properties.get(EMBEDDER_PROPERTY),
            int(dimension) if dimension else None,
            int(rows[0]["count(*)"]) if rows else 0,
        )

    def _properties(self) -> dict[str, str]:
        client = self.client()
        found = self._call(lambda: client.describe_collection(self.collection))
        return {str(k): str(v) for k, v in (found.get("properties") or {}).items()}

    def check_embedder(self, identity: str, dimension: int | None = None) -> None:
        """Refuse an embedder the collection was not made with (None: it does not exist yet)."""
        client = self.client()
        if not self._call(lambda: client.has_collection(self.collection)):
            return
        properties = self._properties()
        recorded = properties.get(EMBEDDER_PROPERTY)
        size = properties.get(DIMENSION_PROPERTY)
        if recorded != identity or (dimension and size and int(size) != dimension):
            raise EmbedderMismatch(
                f"the collection {self.collection!r} holds vectors of {recorded or 'unknown'} "
                f"({size or '?'} dimensions), not of {identity}: one model per collection. "
                "Use the embedder it was made with, or another OPENRAG_TUI_COLLECTION"
            )

    def ensure(self, identity: str, dimension: int) -> None:
        """The collection, created with its schema, indexes and embedder on first use (checked
        once per process: every document of a batch asks)."""
        if self._ensured == (identity, dimension):
            return
        self.check_embedder(identity, dimension)
        client = self.client()
        if self._call(lambda: client.has_collection(self.collection)):
            self._ensured = (identity, dimension)
            return
        module = pymilvus()
        self._call(
            lambda: client.create_collection(
                self.collection,
                schema=_schema(module, dimension),
                index_params=_index_params(module, client),
                properties={EMBEDDER_PROPERTY: identity, DIMENSION_PROPERTY: str(dimension)},
            )
        )
        self._loaded = True
        self._ensured = (identity, dimension)

    def _load(self) -> None:
        if not self._loaded:
            client = self.client()
            self._call(lambda: client.load_collection(self.collection))
            self._loaded = True

    # writing

    def replace(
        self, partition: str, file_id: str, rows: Sequence[Mapping[str, Any]], tail: bool = True
    ) -> None:
        """The document's rows replaced as a whole: upsert them, then delete the rows beyond
        its new length (an older, longer version's tail) unless there can be none (`tail`
        False: its first write). That delete is a query by expression, which in Milvus Lite
        scans the memtable: two thirds of its time when every document was new."""
        client = self.client()
        for start in range(0, len(rows), UPSERT_ROWS):
            batch = [dict(row) for row in rows[start : start + UPSERT_ROWS]]
            self._call(lambda batch=batch: client.upsert(self.collection, batch))
        if not tail:
            return
        self._call(
            lambda: client.delete(
                self.collection,
                filter=f"partition == {quoted(partition)} and file_id == {quoted(file_id)} "
                f"and chunk_index >= {len(rows)}",
            )
        )

    def forget(self, partition: str, file_ids: Iterable[str]) -> int:
        """Remove these documents' rows from the partition; how many went."""
        client = self.client()
        if not self._call(lambda: client.has_collection(self.collection)):
            return 0
        removed = 0
        for file_id in file_ids:
            found = self._call(
                lambda file_id=file_id: client.delete(
                    self.collection,
                    filter=f"partition == {quoted(partition)} and file_id == {quoted(file_id)}",
                )
            )
            removed += _deleted(found)
        return removed

    # reading

    def counts(self, partitions: Iterable[str]) -> dict[str, int]:
        """Chunks per partition."""
        client = self.client()
        if not self._call(lambda: client.has_collection(self.collection)):
            return {}
        found = {}
        for partition in partitions:
            rows = self._call(
                lambda partition=partition: client.query(
                    self.collection,
                    filter=f"partition == {quoted(partition)}",
                    output_fields=["count(*)"],
                )
            )
            found[partition] = int(rows[0]["count(*)"]) if rows else 0
        return found

    def rows_of(self, partition: str, file_id: str) -> list[dict[str, Any]]:
        """A document's rows (id, chunk index, content hash), for checks."""
        client = self.client()
        self._load()
        return self._call(
            lambda: client.query(
                self.collection,
                filter=f"partition == {quoted(partition)} and file_id == {quoted(file_id)}",
                output_fields=["id", "chunk_index", "content_hash"],
            )
        )

    def hybrid_search(
        self, partition: str, vector: Sequence[float], text: str, top: int
    ) -> list[Hit]:
        """Dense (COSINE) and BM25 results fused by reciprocal rank; the partition filter goes
        in each request (Milvus Lite ignores a filter given to the fused call)."""
        module = pymilvus()
        client = self.client()
        if not self._call(lambda: client.has_collection(self.collection)):
            return []
        self._load()
        expr = f"partition == {quoted(partition)}"
        wide = max(top * 4, 20)
        requests = [
            module.AnnSearchRequest(
                data=[list(vector)], anns_field="vector", param={"metric_type": "COSINE"},
                limit=wide, expr=expr,
            ),
            module.AnnSearchRequest(
                data=[text], anns_field="sparse", param={"metric_type": "BM25"},
                limit=wide, expr=expr,
            ),
        ]  # fmt: skip
        found = self._call(
            lambda: client.hybrid_search(
                self.collection, requests, module.RRFRanker(), limit=top,
                output_fields=OUTPUT_FIELDS,
            )
        )  # fmt: skip
        hits = []
        for rank, hit in enumerate(found[0] if found else (), 1):
            entity = hit.get("entity", {})
            hits.append(
                Hit(
                    rank=rank,
                    score=float(hit.get("distance", 0.0)),
                    text=str(entity.get("text", "")),
                    file_id=str(entity.get("file_id", "")),
                    source=str(entity.get("source", "")),
                    pages=tuple(int(p) for p in entity.get("pages") or ()),
                    chunk_index=int(entity.get("chunk_index", 0)),
                    partition=str(entity.get("partition", partition)),
                )
            )
        return hits


class EmbedderMismatch(DocumentError):
    """The batch's embedder is not the one the collection was made with."""


@cache
def store(uri: str, collection: str) -> Store:
    """The process's Store for a collection (one connection, shared by its threads)."""
    return Store(uri, collection)


def text_bytes(text: str) -> str:
    """`text` within VARCHAR's limit, cut at a character boundary."""
    data = text.encode("utf-8")
    return text if len(data) <= MAX_TEXT_BYTES else data[:MAX_TEXT_BYTES].decode("utf-8", "ignore")


def _schema(module: Any, dimension: int) -> Any:
    data_type = module.DataType
    schema = module.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", data_type.VARCHAR, is_primary=True, max_length=128)
    schema.add_field(
        "text", data_type.VARCHAR, max_length=MAX_TEXT_BYTES, enable_analyzer=True,
        analyzer_params=ANALYZER,
    )  # fmt: skip
    schema.add_field("vector", data_type.FLOAT_VECTOR, dim=dimension)
    schema.add_field("sparse", data_type.SPARSE_FLOAT_VECTOR)
    schema.add_field("partition", data_type.VARCHAR, max_length=256, is_partition_key=True)
    schema.add_field("file_id", data_type.VARCHAR, max_length=MAX_PATH)
    schema.add_field("source", data_type.VARCHAR, max_length=MAX_PATH)
    schema.add_field("pages", data_type.ARRAY, element_type=data_type.INT64, max_capacity=4096)
    schema.add_field("chunk_index", data_type.INT64)
    schema.add_field("content_hash", data_type.VARCHAR, max_length=128)
    schema.add_field("metadata", data_type.JSON)
    schema.add_function(
        module.Function(
            name="bm25",
            function_type=module.FunctionType.BM25,
            input_field_names=["text"],
            output_field_names=["sparse"],
        )
    )
    return schema


def _index_params(module: Any, client: Any) -> Any:
    params = client.prepare_index_params()
    params.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
    params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return params


def _unreachable(error: Exception) -> bool:
    code = getattr(error, "code", None)
    text = str(error).lower()
    return code in (1, 2) or "unavailable" in text or "fail connecting" in text


def _said(error: Exception) -> str:
    return str(getattr(error, "message", None) or error).strip().splitlines()[0][:200]


def _deleted(result: Any) -> int:
    if isinstance(result, dict):
        return int(result.get("delete_count", 0))
    if isinstance(result, list):
        return len(result)
    return int(getattr(result, "delete_count", 0) or 0)
