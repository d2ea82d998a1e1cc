"""Sphinx configuration for labhub's documentation (MyST markdown, built with -W in CI)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("_ext"))

project = "labhub"
author = "labhub developers"
copyright = "2026, labhub developers"

extensions = ["myst_parser", "traits_reference"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "README.md"]
html_theme = "alabaster"
html_title = "labhub"
suppress_warnings = ["myst.xref_missing"]
