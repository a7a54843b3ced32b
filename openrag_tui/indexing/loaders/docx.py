"""DOCX through mammoth (the optional `docx` extra): Word's structure as Markdown, one page.

Word files store no pages (the layout is computed when shown), so a DOCX is a single page.
"""

from __future__ import annotations

import importlib.util
import io

from openrag_tui.indexing.loaders.base import Document, DocumentError, single_page


def load(data: bytes) -> Document:
    if importlib.util.find_spec("mammoth") is None:
        raise DocumentError("DOCX needs mammoth: pip install 'openrag-tui[docx]' on every node")
    import mammoth

    try:
        result = mammoth.convert_to_markdown(io.BytesIO(data))
    except Exception as error:  # a zip that is not a Word document, or a broken one
        raise DocumentError(f"not a readable DOCX ({type(error).__name__}: {error})") from None
    return single_page("docx", result.value.strip())
