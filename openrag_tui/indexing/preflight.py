"""Before a batch is queued: can its vector store and its embedder be reached, and do they
agree? For a batch into OpenRAG: does OpenRAG answer, and take the token? Each refusal is one
sentence naming the setting to fix; nothing is queued."""

from __future__ import annotations

from openrag_tui.indexing.batch import BatchConfig
from openrag_tui.indexing.embedders import make_embedder
from openrag_tui.indexing.errors import Unavailable
from openrag_tui.indexing.milvus import Store
from openrag_tui.indexing.work import embedder_of

START_HINT = "start it (`openrag-tui up --local` starts Milvus Lite here) or fix VDB_HOST/VDB_PORT"


def check_services(config: BatchConfig) -> None:
    """Unavailable, EmbedderMismatch or AuthRefused when the batch could not be written; else
    nothing."""
    if config.target == "openrag":
        from openrag_tui.indexing.openrag.client import OpenRag, token_of

        OpenRag(config.openrag_url or "", token_of(config.env_file), timeout=5.0).supported()
        return
    if not config.needs_vectors:
        return
    store = Store(config.vdb_uri, config.collection, timeout=5.0)
    try:
        store.describe()
    except Unavailable as error:
        raise Unavailable(f"{error}: {START_HINT}") from None
    embedder = make_embedder(embedder_of(config))
    dimension = embedder.dimension  # asks a remote embedder once: it must answer now
    store.check_embedder(embedder.config.identity, dimension)
    if isinstance(dimension, int) and dimension <= 0:
        raise Unavailable(f"{embedder.config.where} gave empty vectors")
