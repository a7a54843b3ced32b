"""What a batch can be refused for, before or while it runs; importable without Ray."""

from __future__ import annotations


class BadInput(ValueError):
    """Metadata or chunk sizes the batch cannot take."""


class CoordinatorMismatch(RuntimeError):
    """The namespace's coordinator writes another ledger than this .env names."""
