"""WordLlama's 256-dimension model, whose weights ship inside its wheel: no download, CPU only.

Packaging quirk of wordllama 0.4: `WordLlama.load()` looks for its tokenizer in `tokenizer/`
while the wheel ships it in `tokenizers/`, then tries a model hub (which fails offline). The
shipped file is copied once into our cache folder and loaded from there with downloads off.
Vectors are normalised; a chunk with no word the model knows (its vector would be NaN) gets a
neutral unit vector instead, since Milvus would store a NaN.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from openrag_tui.config.locations import cache_dir
from openrag_tui.indexing.embedders import (
    DEFAULT_BATCH,
    WORDLLAMA_DIM,
    WORDLLAMA_MODEL,
    EmbedderConfig,
)
from openrag_tui.indexing.errors import Unavailable

TOKENIZER = f"{WORDLLAMA_MODEL}_tokenizer_config.json"


def load_model() -> Any:
    """The model, offline; Unavailable naming what is missing."""
    try:
        from wordllama import WordLlama
    except ImportError:
        raise Unavailable("the built-in embedder needs wordllama: pip install wordllama") from None
    cache = _cache_folder()
    target = cache / "tokenizers" / TOKENIZER
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shipped = files("wordllama") / "tokenizers" / TOKENIZER
        with (
            shipped.open("rb") as source,
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as copy,
        ):
            shutil.copyfileobj(source, copy)
        os.replace(copy.name, target)
    return WordLlama.load(
        WORDLLAMA_MODEL, dim=WORDLLAMA_DIM, cache_dir=cache, disable_download=True
    )


def _cache_folder() -> Path:
    """Our cache folder, or a private temporary one where HOME is not writable (some workers)."""
    for folder in (cache_dir() / "wordllama", Path(tempfile.gettempdir()) / f"ortui-{os.getuid()}"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    raise Unavailable("no writable folder for the embedder's tokenizer (HOME, /tmp)")


class WordLlamaEmbedder:
    def __init__(self, config: EmbedderConfig) -> None:
        self.config = config
        self._model = load_model()

    @property
    def dimension(self) -> int:
        return WORDLLAMA_DIM

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._model.embed(list(texts), norm=True, batch_size=DEFAULT_BATCH)
        return [_finite(vector.tolist()) for vector in vectors]


def _finite(vector: list[float]) -> list[float]:
    if all(math.isfinite(value) for value in vector):
        return vector
    return [1.0] + [0.0] * (len(vector) - 1)
