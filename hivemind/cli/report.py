"""``hivemind report DIR``: rebuild report.txt and report.html of any output folder (run, sweep, live, fit)."""

from __future__ import annotations

from pathlib import Path

from hivemind.cli.common import EXIT_OK, add_verbose_arg


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="rebuild OUT/report.txt and OUT/report.html of a run, sweep, live or fit folder")
    p.add_argument("dir", help="an output folder of hivemind run, sweep, live or fit")
    add_verbose_arg(p)
    p.set_defaults(func=cmd_report)


# What each kind of folder is read from: named when a folder's files are not what hivemind writes.
READS = {"run": "manifest.json and run.nc", "sweep": "sweep.nc", "live": "summary.json and live.nc", "fit": "fit.json"}


def cmd_report(args) -> int:
    from hivemind.cli.common import UsageError, finish_report
    from hivemind.io.documents import DocumentError
    from hivemind.report import kind_of

    out = Path(args.dir)
    kind = kind_of(out)  # a folder of no known kind is one line already
    try:
        finish_report(out, args.verbose)
    except DocumentError:  # names the file, and the version it was written by: one line already
        raise
    except KeyError as e:  # a file from another version of hivemind, or not from hivemind at all
        raise UsageError(f"{out}: no key {e.args[0]!r} in {READS[kind]}, as a {kind} folder of this hivemind has") from None
    except (OSError, ValueError, TypeError) as e:
        line = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise UsageError(f"{out}: {READS[kind]} cannot be read as a {kind} folder's ({line})") from None
    return EXIT_OK
