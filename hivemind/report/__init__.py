"""What an output folder shows a person: the verdict first, the full tables in ``report.txt``,
and ``report.html``, one self-contained page with the figures (and, for a live run, the
conversation to browse). ``hivemind report DIR`` rebuilds them for any output folder.
"""

from hivemind.report.folders import HTML, TEXT, Report, ReportError, build, kind_of, write

__all__ = ["HTML", "TEXT", "Report", "ReportError", "build", "kind_of", "write"]
