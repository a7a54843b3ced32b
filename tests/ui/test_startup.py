"""What the panel loads before it can draw: Textual and its own screen, not the cluster's
modules, the other screens, Ray's process list or the ledger (each loads when first used; the
first poll loads the cluster's modules in its own thread, its requests already sent)."""

from __future__ import annotations

import subprocess
import sys

LATER = (
    "openrag_tui.cluster.allocation",  # the view: with the first poll
    "openrag_tui.cluster.refresh",
    "openrag_tui.cluster.logs",
    "openrag_tui.cluster.lifecycle",
    "openrag_tui.cluster.processes",
    "openrag_tui.indexing.ledger",
    "openrag_tui.ui.screens.batches",
    "openrag_tui.ui.screens.env_editor",
    "openrag_tui.ui.screens.search",
    "psutil",
    "yaml",
    "sqlite3",
)


def test_the_panel_module_loads_only_what_the_first_frame_needs() -> None:
    code = "import sys, openrag_tui.ui.app; print('\\n'.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "openrag_tui.ui.screens.main" in loaded
    assert [module for module in LATER if module in loaded] == []
