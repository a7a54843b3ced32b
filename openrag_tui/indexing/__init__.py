"""Indexing batches: durable, exactly-once runs of documents through the pools.

`api` is the one door for the CLI and the panel; `coordinator` runs inside the cluster.
"""
