"""Sphinx configuration for the helpkit documentation (built with -W: warnings are errors)."""

from __future__ import annotations

project = "helpkit"
author = "helpkit developers"
copyright = "2026, helpkit developers"

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_preserve_defaults = True
nitpicky = False
html_theme = "alabaster"
suppress_warnings = ["myst.xref_missing"]
