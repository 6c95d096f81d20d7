"""The command line's shared parts: the progress bar, argparse errors as one line, the types."""

from __future__ import annotations

import io

import pytest

from hivemind.cli import main
from hivemind.cli.common import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_starts_where_a_resumed_run_is_and_stays_silent_off_a_terminal(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    bar = Progress(True)
    bar(40, 100)  # a run resumed at step 40
    assert screen.getvalue().startswith("\r 40%|") and "40/100" in screen.getvalue()  # drawn from 40, not from 0
    bar(70, 100)
    assert (bar.bar.n, bar.bar.total) == (70, 100)  # tqdm redraws at most every 0.1 s, so read its count
    bar.close()
    assert bar.bar is None
    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    Progress(False)(5, 10)
    log = io.StringIO()  # not a terminal: a log file or CI
    monkeypatch.setattr("sys.stderr", log)
    Progress(True)(5, 10)
    assert quiet.getvalue() == "" and log.getvalue() == ""


@pytest.mark.parametrize(
    "argv, words",
    [
        (["paths", "s.toml", "--out", "o", "--seeds", "0"], "argument --seeds: must be an integer > 0, got 0"),
        (
            ["entropy", "s.toml", "--out", "o", "--lambdas", "0,2"],
            "argument --lambdas: must be comma-separated numbers in [0, 1]",
        ),
        (["plot", "r", "--formats", "png,gif"], "argument --formats: must be a comma-separated subset of png, pdf, svg"),
        (["sweep", "s.toml", "--out", "o", "--memory", "-1"], "argument --memory: must be a finite number > 0, got -1.0"),
        (["run", "s.toml"], "the following arguments are required: --out"),
        (["fit", "d", "--out", "o", "--transform", "exp"], "argument --transform: invalid choice: 'exp'"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it_with_exit_status_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and err.startswith("hivemind ")


@pytest.mark.parametrize(
    "argv, cached",
    [
        (["run", "s.toml", "--out", "o"], True),
        (["--no-compile-cache", "run", "s.toml", "--out", "o"], False),
        (["run", "s.toml", "--out", "o", "--no-compile-cache"], False),
        (["validate", "s.toml", "--no-compile-cache"], False),
    ],
)
def test_the_compile_cache_flag_is_read_before_or_after_the_command(argv, cached):
    from hivemind.cli import build_parser

    assert build_parser().parse_args(argv).compile_cache is cached


def test_version_names_the_commit_and_the_kernel_build(capsys):
    """--version: the git description (asked of git here, independently) and the kernel's build."""
    import subprocess
    from pathlib import Path

    import hivemind
    from hivemind._version import __version__
    from hivemind.engine import fused

    assert main(["--version"]) == 0
    first, kernel, libraries = capsys.readouterr().out.splitlines()
    root = Path(hivemind.__file__).resolve().parents[1]
    if (root / ".git").exists():
        describe = ["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"]
        git = subprocess.run(describe, capture_output=True, text=True)
        assert first == f"hivemind {__version__} ({git.stdout.strip()})"
    assert kernel == f"kernel: {fused.describe()}" and libraries.startswith("jax ")
