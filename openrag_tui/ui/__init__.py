"""The Textual panel. The only package that imports Textual."""
