"""The panel's own live-resizable actor pools, `indexer` and `marker`, running inside Ray.

Importing this package is cheap and Ray-free: the marker's subprocesses import
`openrag_tui.pools.tasks` through it. Ray is imported by `workers`, `supervisor` and `control`.
"""
