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


class TaskFailed(Exception):
    """A file's own task raised something other than a DocumentError (a bug, a sink's refusal):
    FAILED with this reason, like a task that raised on its own."""


class AuthRefused(Exception):
    """OpenRAG refused the token (401) or its role (403): the sentence names AUTH_TOKEN."""


def plain_reason(error: BaseException) -> str:
    """The sentence an operator reads for a failed file: the loader's own words, not the chain
    of Ray tracebacks (worker → subprocess) the error travelled through."""
    from ray.exceptions import RayTaskError  # here: this module stays importable without Ray

    cause = error
    while isinstance(cause, RayTaskError) and cause.cause is not None and cause.cause is not cause:
        cause = cause.cause
    if isinstance(cause, RayTaskError):  # no original exception: its traceback ends with it
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        kind, _, message = (lines[-1] if lines else "").partition(": ")
        if kind.rsplit(".", 1)[-1] in (DocumentError.__name__, Unavailable.__name__):
            return message
        return f"{kind.rsplit('.', 1)[-1]}: {message}" if message else _first_line(cause)
    if isinstance(cause, DocumentError | Unavailable | TaskFailed):
        return _first_line(cause)
    return f"{type(cause).__name__}: {_first_line(cause)}"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
