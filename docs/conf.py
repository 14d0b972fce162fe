"""Sphinx configuration."""

from __future__ import annotations

import procrastinate_anyio

project = "procrastinate_anyio"
author = "procrastinate_anyio contributors"
copyright = "2026, procrastinate_anyio contributors"  # Sphinx's name
release = procrastinate_anyio.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
html_theme = "furo"
nitpicky = False
suppress_warnings = ["myst.xref_missing"]
