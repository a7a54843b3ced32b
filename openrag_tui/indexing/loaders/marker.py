"""PDFs through marker-pdf 2 (the optional `marker` extra): `marker` runs the layout/OCR models,
`marker-text` is marker's model-free text mode.

Offline, marker does not fail, it hangs: 300 s waiting for a model server that cannot download
its weights. So `preflight` checks first, in well under a second, and names what is missing:
the package, the font (`FONT_PATH`) or, for `marker`, the layout model's weights. A converter is
built once per process and reused (the marker pool's subprocesses live for many PDFs).
"""

from __future__ import annotations

import importlib.util
import os
import re
from functools import cache
from typing import Any

from openrag_tui.indexing.loaders.base import Document, DocumentError
from openrag_tui.indexing.loaders.pdfium import paged

LAYOUT_MODEL = "datalab-to/surya_layout2"
_TEXT_MODE = {"disable_ocr": True, "force_layout_block": "Text"}
# with paginate_output, marker starts each page with "{n}" and 48 dashes
_PAGE_BREAK = re.compile(r"\n*\{\d+\}-{48}\n*")


def preflight(engine: str) -> None:
    """Raise DocumentError naming what `engine` (marker or marker-text) lacks; else nothing."""
    if importlib.util.find_spec("marker") is None:
        raise DocumentError(
            f"PDF_LOADER={engine} needs marker-pdf: pip install 'openrag-tui[marker]' on every node"
        )
    font = _font_path()
    if not font or not os.path.isfile(font):
        raise DocumentError(
            f"PDF_LOADER={engine}: marker's font is missing ({font or 'FONT_PATH unset'}); "
            "set FONT_PATH to an existing .ttf on every node"
        )
    if engine == "marker":
        _check_weights()


def _font_path() -> str | None:
    from marker.settings import settings  # type: ignore[import-not-found]

    return os.environ.get("FONT_PATH") or getattr(settings, "FONT_PATH", None)


def _check_weights() -> None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(LAYOUT_MODEL, local_files_only=True)
    except LocalEntryNotFoundError:
        cache = os.environ.get("MODEL_CACHE_DIR", "~/.cache/datalab/models")
        raise DocumentError(
            f"PDF_LOADER=marker: the weights of {LAYOUT_MODEL} are not on this node "
            f"(MODEL_CACHE_DIR/HF cache {cache}); fetch them or use PDF_LOADER=marker-text"
        ) from None


def load(path: str, engine: str) -> Document:
    preflight(engine)
    try:
        rendered = _converter(engine)(path)
    except Exception as error:
        raise DocumentError(f"marker could not convert it: {error}") from None
    pages = _PAGE_BREAK.split(rendered.markdown)
    return paged("pdf", tuple(pages[1:] if pages and not pages[0].strip() else pages))


@cache
def _converter(engine: str) -> Any:
    from marker.converters.pdf import PdfConverter  # type: ignore[import-not-found]
    from marker.models import create_model_dict  # type: ignore[import-not-found]

    config: dict[str, Any] = {
        "output_format": "markdown",
        "paginate_output": True,
        "pdftext_workers": 1,
        "disable_tqdm": True,
    }
    if engine == "marker-text":
        config.update(_TEXT_MODE)
    return PdfConverter(artifact_dict=create_model_dict(), config=config)
