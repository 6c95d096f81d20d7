"""Writes the generated reference pages (commands, scenario keys, output files) before Sphinx reads
the sources, from ``hivemind.cli.reference``; unchanged pages are not rewritten."""

from __future__ import annotations

from pathlib import Path


def _generate(app) -> None:
    from hivemind.cli.reference import write_reference

    write_reference(Path(app.srcdir) / "reference" / "generated")


def setup(app):
    app.connect("builder-inited", _generate)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
