"""``hivemind report DIR``: rebuild report.txt and report.html of any output folder (run, sweep, live, fit)."""

from __future__ import annotations

from pathlib import Path

from hivemind.cli.common import EXIT_OK, add_verbose_arg


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="rebuild OUT/report.txt and OUT/report.html of a run, sweep, live or fit folder")
    p.add_argument("dir", help="an output folder of hivemind run, sweep, live or fit")
    add_verbose_arg(p)
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from hivemind.cli.common import finish_report

    finish_report(Path(args.dir), args.verbose)
    return EXIT_OK
