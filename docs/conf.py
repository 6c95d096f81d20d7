"""Sphinx configuration: MyST pages, tutorials as MyST notebooks executed at build time (cached),
the reference generated from the code. Built by `make docs` with warnings as errors."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "hivemind"
author = "the hivemind developers"
copyright = "2026, the hivemind developers"
from hivemind import __version__ as release  # noqa: E402

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "hivemind_reference",
]
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]
html_theme = "furo"
html_title = f"hivemind {release}"
html_static_path: list[str] = []

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 4
myst_links_external_new_tab = False

# Every tutorial runs when the site is built; a failing cell fails the build. Unchanged
# tutorials are taken from the cache (docs/_build/.jupyter_cache) instead of run again.
nb_execution_mode = "cache"
nb_execution_cache_path = str(Path(__file__).parent / "_build" / ".jupyter_cache")
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 900
nb_merge_streams = True

autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
