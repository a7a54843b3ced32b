"""openrag-tui: a keyboard-driven control panel for OpenRAG on Ray clusters."""

__version__ = "0.1.0"
