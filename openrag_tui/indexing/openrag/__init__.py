"""Batches into a running OpenRAG through its own HTTP API: the client, back-pressure (lane) and
the life of one file (runner)."""
