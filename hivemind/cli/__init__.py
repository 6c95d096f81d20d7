"""The ``hivemind`` command: one module per subcommand, each parsing, calling the API and printing.

Commands compute nothing themselves. The library is imported inside each command, so
``hivemind --help`` loads argparse and little else. Every ``InputError`` the library raises
(a scenario key, a grid, a run directory, ...) is printed as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import threading

from hivemind.cli import bench, datasets, design, entropy, fit, live, paths, plot, report, run, sweep, theory, validate
from hivemind.cli.common import EXIT_USAGE, Parser, UsageError, use_compile_cache
from hivemind.errors import InputError

COMMANDS = (run, plot, theory, paths, entropy, bench, live, sweep, fit, design, datasets, report, validate)

__all__ = ["UsageError", "build_parser", "console", "main"]


class _Version(argparse.Action):
    """--version: hivemind's version and git description, the kernel's build, and the libraries (loads jax)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from hivemind.io.results import versions

        v = versions()
        others = ", ".join(f"{k} {v[k]}" for k in ("jax", "numpy", "optax", "xarray", "networkx", "python"))
        print(f"hivemind {v['hivemind']} ({v['git']})\nkernel: {v['kernel_build']}\n{others}")
        parser.exit()


def build_parser() -> Parser:
    parser = Parser(prog="hivemind", description="Semantic consensus around an infinite-inertia anchor.")
    parser.add_argument("--version", action=_Version, help="the version, the git commit, the fused kernel's build, and exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    # Accepted before or after the command (`hivemind run ... --no-compile-cache`); in the
    # commands it has no default, so that it cannot undo the flag given before them.
    for p, default in [(parser, True), *((p, argparse.SUPPRESS) for p in sub.choices.values())]:
        p.add_argument(
            "--no-compile-cache",
            dest="compile_cache",
            action="store_false",
            default=default,
            help="compile every program afresh (default: reuse JAX's compiled programs from earlier runs, "
            "kept in $HIVEMIND_CACHE_DIR or ~/.cache/hivemind/jax; HIVEMIND_COMPILE_CACHE=0 also turns this off)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a bad flag (2, one line already printed)
        return int(e.code or 0)
    with contextlib.ExitStack() as args.exit_stack:
        try:
            use_compile_cache(args.compile_cache)
            return args.func(args)
        except InputError as e:
            print(e.command_line(), file=sys.stderr)
            return EXIT_USAGE


def console() -> None:
    """The ``hivemind`` program: ``main``, then a quick exit."""
    leave(main())


def leave(code: int) -> None:
    """Exit with ``code``, skipping the interpreter's teardown once jax is loaded.

    Tearing down jax, XLA's client and the modules above them module by module took
    0.4 s of a 3 s quickstart run here, after the results were written. The exit
    handlers still run (JAX's distributed shutdown, logging, anything a user registered),
    and streams are flushed; a thread that the exit would wait for keeps the plain exit.
    """
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if "jax" not in sys.modules or others:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe has nothing left to lose
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
