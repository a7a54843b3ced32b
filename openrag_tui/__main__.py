"""`python -m openrag_tui` is the same as the `openrag-tui` command."""

from openrag_tui.cli import main

raise SystemExit(main())
