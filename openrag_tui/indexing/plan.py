"""A batch checked before anything is submitted: its files found and kept inside the volume, its
partition and settings valid. No cluster and no Ray: the panel checks a path as it is typed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openrag_tui.config import Settings
from openrag_tui.indexing.batch import TARGETS, BatchConfig, check_partition, config_of
from openrag_tui.indexing.chunking import check_sizes
from openrag_tui.indexing.errors import BadInput
from openrag_tui.indexing.paths import Where, expand


def checked_config(
    settings: Settings, env_file: str | None = None, target: str | None = None
) -> BatchConfig:
    """The .env's batch settings, refused with one sentence when the chunks cannot be cut or
    the target is unknown."""
    try:
        check_sizes(settings.chunk_size, settings.chunk_overlap)
    except ValueError as error:
        raise BadInput(f"OPENRAG_TUI_CHUNK_SIZE/OVERLAP: {error}") from None
    if target is not None and target not in TARGETS:
        raise BadInput(f"the target must be one of {', '.join(TARGETS)} (got {target!r})")
    return config_of(settings, env_file, target)


@dataclass(frozen=True)
class BatchRequest:
    """A checked batch, ready to submit: real file paths inside the volume, and its settings."""

    files: tuple[str, ...]
    partition: str
    metadata: dict[str, Any]
    force: bool
    config: BatchConfig
    notes: tuple[str, ...] = ()  # where relative paths were found, for the operator


def plan_batch(
    settings: Settings,
    where: Where,
    paths: list[str],
    partition: str,
    metadata: dict[str, Any] | None = None,
    force: bool = False,
    cwd: Path | None = None,
    env_file: str | None = None,
    target: str | None = None,
) -> BatchRequest:
    """Check the input without the cluster: folders and globs expanded, every path inside the
    volume; raises BadPath, BadPartition or BadInput with one sentence."""
    check_partition(partition)
    if metadata is not None and not isinstance(metadata, dict):
        raise BadInput("metadata must be a JSON object")
    config = checked_config(settings, env_file, target)
    found = expand(paths, where, cwd or Path(os.getcwd()))
    return BatchRequest(found.files, partition, metadata or {}, force, config, found.notes)
