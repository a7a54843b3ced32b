"""What a batch or one of its files can be refused for; importable without Ray."""

from __future__ import annotations


class BadInput(ValueError):
    """Metadata or chunk sizes the batch cannot take."""


class CoordinatorMismatch(RuntimeError):
    """The namespace's coordinator writes another ledger than this .env names."""


class DocumentError(Exception):
    """The file cannot be indexed as it is (corrupt, encrypted, empty, unsupported, swapped for a
    link or a device, too large): FAILED with this plain reason, never retried. Any other error
    is the machinery's, and is retried."""
