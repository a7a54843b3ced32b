"""What can go wrong joining the cluster or reaching a pool; importable without Ray."""

from __future__ import annotations


class ClusterUnreachable(Exception):
    """No Ray cluster answered at the address; the message says which and where it came from."""


class PoolsNotDeployed(Exception):
    """The pool has no supervisor in this namespace: `openrag-tui pools deploy` first."""
