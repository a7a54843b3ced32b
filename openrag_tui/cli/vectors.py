"""`openrag-tui search QUERY --partition P` and `openrag-tui forget PATH... --partition P`.

Search needs no cluster: it embeds the query here and asks the vector store. Forget goes
through the coordinator (the ledger's one writer): the documents leave the index, and the same
content indexed again later is not SKIPPED.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from openrag_tui.cli.common import (
    EXIT_OK,
    Output,
    UsageError,
    address_option,
    changes,
    common_options,
    connected,
    json_option,
    open_workspace_of,
    whole_number,
)

if TYPE_CHECKING:
    from rich.table import Table

    from openrag_tui.indexing.search import Results

_SETTINGS = {"OPENRAG_TUI_SINK", "OPENRAG_TUI_COLLECTION", "OPENRAG_TUI_EMBEDDER", "VDB_HOST",
             "VDB_PORT", "EMBEDDER_BASE_URL", "DATA_VOLUME", "OPENRAG_TUI_LEDGER"}  # fmt: skip


def register(commands: argparse._SubParsersAction) -> None:
    search = commands.add_parser("search", help="hybrid search (dense + BM25) in a partition")
    search.add_argument("query", metavar="QUERY", help="what to look for")
    search.add_argument("--partition", required=True, help="the partition searched")
    search.add_argument("--top", type=whole_number, default=5, metavar="K", help="results (5)")
    json_option(search)
    common_options(search)
    search.set_defaults(handler=run_search)

    forget = commands.add_parser("forget", help="remove documents from the index")
    forget.add_argument("paths", nargs="+", metavar="PATH", help="files, folders or globs")
    forget.add_argument("--partition", required=True, help="the partition they are in")
    common_options(forget)
    address_option(forget)
    forget.set_defaults(handler=run_forget)


def _workspace(args: argparse.Namespace):
    workspace = open_workspace_of(args)
    problems = [p for p in workspace.settings.errors if p.variable in _SETTINGS]
    if problems:
        raise UsageError(problems[0].text)
    return workspace


def run_search(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.indexing.search import search

    workspace = _workspace(args)
    if workspace.settings.sink != "milvus":
        raise UsageError("OPENRAG_TUI_SINK is files: there is no vector index to search")
    results = search(
        workspace.settings, args.partition, args.query, args.top, str(workspace.location.path)
    )
    if out.json_mode:
        out.json(results.to_dict())
    elif not results.hits:
        out.say(f"nothing found in partition {args.partition!r}")
    else:
        out.print(results_table(results))
    return EXIT_OK


@changes
def run_forget(args: argparse.Namespace, out: Output) -> int:
    from openrag_tui.indexing import api
    from openrag_tui.indexing.paths import Where, relatives

    workspace = _workspace(args)
    where = Where.of(workspace.settings, workspace.location.path.parent)
    found = relatives(args.paths, where)
    with connected(workspace, args.address):
        removed = api.forget(workspace.settings, where, args.partition, list(found))
    kind = "chunks" if workspace.settings.sink == "milvus" else "files"
    out.say(f"forgot {len(found)} document(s) of {args.partition!r}: {removed} {kind} removed")
    return EXIT_OK


def results_table(results: Results) -> Table:
    from rich import box
    from rich.table import Table

    from openrag_tui.formats import plain

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_lines=False)
    for column in ("#", "score"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("file", overflow="fold", ratio=1)
    table.add_column("pages", no_wrap=True)
    table.add_column("text", overflow="fold", ratio=3)
    for hit in results.hits:
        pages = ",".join(map(str, hit.pages))
        excerpt = " ".join(hit.text.split())[:240]
        table.add_row(str(hit.rank), f"{hit.score:.4f}", plain(hit.file_id), pages, plain(excerpt))
    return table
