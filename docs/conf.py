"""Sphinx configuration of the PyCoffer documentation.

Build (from the repository root, in the dev venv)::

    .venv/bin/python -m sphinx -W --keep-going docs docs/_build/html

Pages are Markdown (MyST); the API and hook references are generated from
the docstrings by autodoc, so the packages must be importable.
"""

from __future__ import annotations

import pycoffer_core

project = "PyCoffer"
author = "The PyCoffer authors"
copyright = "PyCoffer authors"
release = pycoffer_core.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "requirements.txt", "README.md"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": True}

# "ref.python" is Sphinx's "more than one target found" for a bare name: the
# builtin ``type`` in annotations (``type[CofferType]``) matches the
# attributes ``Coffer.type`` and ``CommitEvent.type``. Nothing else is silenced.
suppress_warnings = ["ref.python"]

html_theme = "alabaster"
html_title = f"PyCoffer {release}"
html_theme_options = {
    "description": "Encrypted, compressed files of many members, usable live",
    "fixed_sidebar": True,
}
