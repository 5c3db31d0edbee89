"""Sphinx configuration for the helpkit documentation (built with -W: warnings are errors)."""

from __future__ import annotations

import sys
from pathlib import Path

# Local extensions (docs/_ext): attrs_signatures shows attrs classes' defaults as written.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "helpkit"
author = "helpkit developers"
copyright = "2026, helpkit developers"

extensions = ["myst_parser", "sphinx.ext.autodoc", "attrs_signatures"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "none"
# Defaults as the source writes them (`Impact.MEDIUM`, `UNSET`). For attrs classes the source is
# attrs' generated `__init__` (`attr_dict['matrix'].default`): attrs_signatures rewrites those.
autodoc_preserve_defaults = True
nitpicky = False
html_theme = "alabaster"
suppress_warnings = ["myst.xref_missing"]
