"""Tests against a real Milvus Lite server (the session's `milvus`) and the real WordLlama model;
no Ray."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/vectors/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.vectors)
