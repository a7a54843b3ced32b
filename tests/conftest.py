"""Shared fixtures: the real two-node Ray cluster, and snapshots kept in snapshots/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension

from tests.support.raycluster import TestCluster, running_cluster

pytest_plugins = ["tests.support.fake_ray"]  # the `fake_ray` fixture

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = ROOT / "snapshots"

# Deterministic screens: no blinking cursor, no animations.
os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


class TopLevelSVGExtension(SVGImageExtension):
    """Keep SVG snapshots in snapshots/<test module>/, where they are reviewed like code."""

    @classmethod
    def dirname(cls, *, test_location) -> str:  # syrupy's signature
        return str(SNAPSHOTS / Path(test_location.filepath).stem)


@pytest.fixture
def snapshot(snapshot):
    """syrupy's snapshot, pinned to snapshots/ (snap_compare asks for its own extension)."""
    top_level = snapshot.use_extension(TopLevelSVGExtension)
    top_level.use_extension = lambda _extension=None: top_level
    return top_level


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[TestCluster]:
    """A real two-node cluster (head 4 declared GPUs, worker 2), shared by the session."""
    with running_cluster((4, 2)) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def milvus():
    """A real Milvus Lite server (its own port and folder), shared by the session."""
    from tests.support.milvus import running_milvus

    with running_milvus() as server:
        yield server
