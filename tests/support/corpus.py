"""A small corpus of unrelated documents for search tests (each has one rare word of its own,
and a paraphrase query that shares no rare word with it), and how to write documents straight
into a collection through the `milvus` sink, without Ray."""

from __future__ import annotations

import uuid
from pathlib import Path

from openrag_tui.indexing.chunking import Chunk
from openrag_tui.indexing.embedders import EmbedderConfig, make_embedder
from openrag_tui.indexing.loaders import load
from openrag_tui.indexing.sinks import Indexed
from openrag_tui.indexing.sinks.milvus import MilvusSink

DOCUMENTS = {
    "animals.txt": "The marmoset is a small monkey of South America that lives in trees and eats "
    "insects and fruit.",
    "accounts.md": "# Accounts\n\nTo reset a forgotten password, open the account settings and "
    "choose change password; a link is sent to your email.",
    "finance.txt": "Quarterly revenue grew by twelve percent thanks to strong sales in Europe "
    "and Asia.",
    "gpu.txt": "The indexer pool reserves a fraction of a GPU for each actor on every node.",
    "cooking.html": "<html><body><h1>Bread</h1><p>Bake the bread at two hundred degrees for "
    "forty minutes until the crust is golden.</p></body></html>",
    "weather.txt": "Heavy rain and strong winds are expected along the coast tomorrow afternoon.",
}
RARE = {"animals.txt": "marmoset", "finance.txt": "revenue", "cooking.html": "crust"}
PARAPHRASES = {
    "accounts.md": "I cannot remember my login secret, how do I get back into my profile?",
    "finance.txt": "How much did earnings increase last quarter?",
    "cooking.html": "What temperature should I cook a loaf at?",
}


def write_corpus(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in DOCUMENTS.items():
        (folder / name).write_text(text + "\n")
        paths.append(folder / name)
    return paths


WORDLLAMA = EmbedderConfig("wordllama")


def collection_name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def indexed(partition: str, relative: str, texts: list[str], digest: str = "h") -> Indexed:
    embedder = make_embedder(WORDLLAMA)
    chunks = tuple(Chunk(i, text, (i + 1,)) for i, text in enumerate(texts))
    vectors = tuple(map(tuple, embedder.embed(texts)))
    return Indexed(f"/v/{relative}", relative, partition, digest, "", chunks, {"k": 1}, vectors)


def write(milvus, collection: str, document: Indexed) -> None:
    embedder = make_embedder(WORDLLAMA)
    sink = MilvusSink(milvus.uri, collection)
    sink.store.ensure(embedder.config.identity, embedder.dimension)
    sink.write(document, force=False)


def index_corpus(milvus, collection: str, folder: Path, partition: str) -> None:
    for path in write_corpus(folder):
        document = load(str(path))
        write(milvus, collection, indexed(partition, path.name, list(document.pages)))
