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


class Unavailable(Exception):
    """A service a file needs (the vector store, the embedder) does not answer now: not the
    file's fault. The coordinator queues the file again without using up its attempts, and
    waits (with backoff) before it tries the service again."""


class AuthRefused(Exception):
    """OpenRAG refused the token (401) or its role (403): the sentence names AUTH_TOKEN."""
