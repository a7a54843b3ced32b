"""The embedded Milvus Lite server's process: milvus-lite's gRPC server, stopped so that no
acknowledged write is lost.

`milvus-lite server` closes its database while requests are still running: on Ctrl-C it calls
grpc's `server.stop(grace=5)`, which only starts the shutdown, then `db.close()` at once. A
write in flight then lands in the write-ahead log that close has just deleted, is acknowledged,
and is gone after the restart (seen in CI: a file COMPLETED with none of its rows). Here a
SIGINT or SIGTERM first waits for the running requests to end, then closes the database.

Run as `python -m openrag_tui.cluster.milvus_server --data-dir D --host H --port P`.
"""

from __future__ import annotations

import argparse
import signal
import threading

#: how long requests already running may take to end before the database closes anyway
GRACE_SECONDS = 5.0
#: Milvus Lite's engine takes one writer per collection; its default of ten request workers
#: interleaves concurrent writes in the write-ahead log and loses data on a crash
REQUEST_WORKERS = 1


def serve(data_dir: str, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, then drain the requests and close the database."""
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    ended = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _sig, _frame: ended.set())
    server, db, bound = start_server_in_thread(data_dir, host, port, REQUEST_WORKERS)
    print(f"Milvus Lite listening on {host}:{bound} (data in {data_dir})", flush=True)
    while not ended.wait(1.0):  # woken by the handler; the timeout keeps signals prompt
        pass
    print("Stopping: waiting for running requests", flush=True)
    server.stop(grace=GRACE_SECONDS).wait()
    db.close()
    print("Stopped: data flushed", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m openrag_tui.cluster.milvus_server")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=19530)
    args = parser.parse_args(argv)
    serve(args.data_dir, args.host, args.port)


if __name__ == "__main__":
    main()
