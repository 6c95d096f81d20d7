"""What every command shares: exit codes, one-line errors, the scenario loader, the output
directory, the progress meter, and the argparse types.

Nothing here imports jax: the library is imported inside each command, so ``hivemind --help``
and ``hivemind validate`` answer at once.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from hivemind.errors import InputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FORMATS = ("png", "pdf", "svg")


class UsageError(InputError):
    """Bad input on the command line: one line, exit status 2."""


# --- JAX's persistent compilation cache ---------------------------------------------------

# Every program is kept, however quick to compile: a run's dozen small ones (random keys,
# stacking, conversions) are half of what a second run would compile again. Measured with
# benchmarks/startup.py: a second quickstart run at 0.58x a run without the cache, against
# 0.82x when only programs above 0.2 s are kept; the first run no slower (0.95x).
CACHE_MIN_COMPILE_S = 0.0

# The compilation cache's bound: past it JAX drops the least recently read programs. A run's
# programs take a few MB; HIVEMIND_CACHE_MAX_MB changes the bound.
CACHE_MAX_MB = 2048.0


def cache_dir() -> Path:
    """Where compiled programs are kept: $HIVEMIND_CACHE_DIR, else the user's cache folder."""
    if os.environ.get("HIVEMIND_CACHE_DIR"):
        return Path(os.environ["HIVEMIND_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or (
        Path.home() / "Library" / "Caches" if sys.platform == "darwin" else Path.home() / ".cache"
    )
    return Path(base) / "hivemind" / "jax"


def use_compile_cache(enabled: bool = True) -> Path | None:
    """Turn on JAX's persistent compilation cache (unless ``enabled`` is false or HIVEMIND_COMPILE_CACHE=0).

    A second ``hivemind run`` of the same scenario then loads its programs instead of
    compiling them. JAX keys each entry by the program, the jax and jaxlib versions, the
    backend and the compile options, so an upgrade never reads a stale entry, and writes
    entries atomically, so processes may share the folder. Set before jax is imported,
    through jax's own environment variables, so that this costs no import here.
    """
    if not enabled or os.environ.get("HIVEMIND_COMPILE_CACHE", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: compile every time, as without the cache
    bound = cache_max_bytes()
    if os.environ.get("JAX_COMPILATION_CACHE_MAX_SIZE", "").strip() == "-1":
        # Unbounded, this process writes entries without access times: date them next time.
        (directory / _DATED).unlink(missing_ok=True)
    else:
        _date_entries(directory)
    if "jax" in sys.modules:
        import jax

        if jax.config.jax_compilation_cache_dir is None:
            jax.config.update("jax_compilation_cache_dir", str(directory))
            least = float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", CACHE_MIN_COMPILE_S))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", least)
            jax.config.update("jax_compilation_cache_max_size", int(os.environ.get("JAX_COMPILATION_CACHE_MAX_SIZE", bound)))
    else:
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(directory))
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(CACHE_MIN_COMPILE_S))
        os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(bound))
    return directory


# Marks a cache folder whose every entry has the access time JAX's eviction reads.
_DATED = ".hivemind-dated"


def _date_entries(directory: Path) -> None:
    """Give every entry of an unbounded cache the access-time file of a bounded one, once.

    Entries written without a bound (by an earlier hivemind, or with
    JAX_COMPILATION_CACHE_MAX_SIZE=-1) have none, and JAX's eviction, which reads one per
    entry on every write, would then fail to write anything new. Their modification time
    stands in.
    """
    if (directory / _DATED).exists():
        return
    try:
        for entry in directory.glob("*-cache"):
            atime = entry.with_name(entry.name.removesuffix("-cache") + "-atime")
            if not atime.exists():
                atime.write_bytes(entry.stat().st_mtime_ns.to_bytes(8, "little"))
        (directory / _DATED).touch()
    except OSError:
        pass  # another process is at it, or the folder is read-only: JAX warns and compiles


def cache_max_bytes() -> int:
    """The compilation cache's bound in bytes: $HIVEMIND_CACHE_MAX_MB (default 2048), one line if unusable."""
    text = os.environ.get("HIVEMIND_CACHE_MAX_MB", str(CACHE_MAX_MB))
    try:
        mb = float(text)
    except ValueError:
        mb = math.nan
    if not mb > 0 or math.isinf(mb):
        raise UsageError(f"HIVEMIND_CACHE_MAX_MB must be a positive number of megabytes, got {text!r}")
    return int(mb * 2**20)


# --- argparse types: argparse reports a bad value in one line with the flag's name --------


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer > 0, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be an integer > 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
    return value


def formats(text: str) -> tuple[str, ...]:
    out = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    if not out or not set(out) <= set(FORMATS):
        raise argparse.ArgumentTypeError(f"must be a comma-separated subset of {', '.join(FORMATS)}, got {text!r}")
    return out


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line and exit status 2 (no usage block)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="a scenario TOML file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set dynamics.steps=500 (value read as TOML, else a string)",
    )


def add_grid_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=VALUES",
        help=f"{what}: comma-separated values, lin:A:B:N or log:A:B:N",
    )


def add_formats_arg(p: argparse.ArgumentParser, default: str = "png,pdf") -> None:
    p.add_argument(
        "--formats", type=formats, default=formats(default), help=f"comma-separated figure formats (default: {default})"
    )


def parse_grid(items: list[str]):
    from hivemind.scenario.grid import make_grid, parse_values

    grid = {}
    for item in items:
        key, sep, spec = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--grid expects KEY=VALUES, got {item!r}")
        if key.strip() in grid:
            raise UsageError(f"--grid {key.strip()}: given twice")
        grid[key.strip()] = parse_values(key.strip(), spec)
    return make_grid(grid)


# --- the scenario and the output directory ---------------------------------------------------


def load(args, engine: bool = True):
    """The scenario of ``args`` with its ``[live]`` section read, so that every command checks all of it.

    ``engine``: the command runs the engine, which needs an anchor; a scenario without one (a
    live discussion) is refused here, in one line, before any output directory is claimed.
    """
    from hivemind.live.config import load_scenario

    scenario = load_scenario(args.scenario, args.overrides)
    if engine:
        scenario.anchor_indices  # noqa: B018 (raises the one-line ScenarioError)
    return scenario


def kernel_note(s) -> str | None:
    """One line when the run falls back to the pure-JAX kernel where the fused one was asked for
    (run.kernel = "fused"), or where "auto" would have taken it but it is missing here (an install
    without a compiler, a pull.cc changed since the build), else None."""
    if s.run.kernel == "jax" or (not s.anchors and s.live is not None):
        return None
    from hivemind.engine import fused as fused_kernel
    from hivemind.runner.simulate import kernel_choice

    fused, why = kernel_choice(s)
    if fused:
        return None
    if s.run.kernel == "fused" or not fused_kernel.status()[0]:
        return why
    return None  # auto on a GPU, or a run spread over devices: the pure-JAX kernel is the path there


def describe(s) -> str:
    from hivemind.scenario.names import SYMBOLS

    a = s.arrays
    seeds = f"{len(s.run.seeds)} seed{'s' if len(s.run.seeds) > 1 else ''}"
    edges = f"{a.src.size} {'directed ' if a.directed else ''}edges"
    if not s.anchors and s.live is not None:  # a live discussion: the engine's keys do not apply
        text = f"{s.name}: {a.n_nodes} agents, {edges}, no anchor"
    elif not s.anchors:  # Friedkin-Johnsen: every agent stubborn
        text = (
            f"{s.name}: {s.manifold.kind} {SYMBOLS[s.manifold.kind]}^{s.manifold.dim}, {a.n_nodes} agents, {edges}, "
            f"no anchor (every agent stubborn), rule {s.dynamics.rule}, {s.dynamics.steps} steps, {seeds}"
        )
    else:
        text = (
            f"{s.name}: {s.manifold.kind} {SYMBOLS[s.manifold.kind]}^{s.manifold.dim}, {a.n_nodes} agents, {edges}, "
            f"rule {s.dynamics.rule}, {s.dynamics.steps} steps, {seeds}"
        )
    if s.live is not None:
        models = s.live.distinct_models
        n = len(s.live.endpoints)
        where = "" if s.live.backend == "llama" else f" on {n} server{'s' if n > 1 else ''}"
        text += (
            f"; live: {a.n_nodes - len(s.anchors)} language-model agents, {s.live.rounds} rounds, "
            f"{' and '.join(s.live.decodings)} decoding, model{'s' if len(models) > 1 else ''} {', '.join(models)}{where}"
        )
    return text


def out_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: --out exists and is not a directory")
    return out


def claim(args, out: Path) -> Path:
    """Take OUT's writer lock until the command returns (a second writer gets exit status 2)."""
    from hivemind.io import outdir

    return args.exit_stack.enter_context(outdir.locked(out))


# --- several processes (jax.distributed) ------------------------------------------------------


def add_processes_args(p: argparse.ArgumentParser, how: str) -> None:
    """--coordinator, --num-processes, --process-id, --timeout; ``how`` says how the work is split."""
    g = p.add_argument_group(f"several processes (jax.distributed; {how})")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address, or 'auto' to read a SLURM (or similar) job")
    g.add_argument("--num-processes", type=int, metavar="N", help="how many processes run this together")
    g.add_argument("--process-id", type=int, metavar="I", help="this process's index in [0, N); process 0 writes OUT")
    g.add_argument(
        "--timeout",
        type=float,  # processes.check_setup says what a usable timeout is
        default=60.0,
        metavar="S",
        help="seconds to wait for every process to connect, and for a silent one before giving up (default 60)",
    )


def join_processes(args, check=None) -> bool:
    """Connect to the other processes when --coordinator asks for it; whether there are several.

    ``check()`` runs after the flags were checked and before connecting: a refusal that
    needs no network (a scenario that cannot be split) comes before any wait.
    """
    from hivemind.engine import processes

    if args.coordinator is None:
        if args.num_processes is not None or args.process_id is not None:
            raise UsageError("--num-processes and --process-id need --coordinator HOST:PORT (or --coordinator auto)")
        return False
    processes.check_setup(args.coordinator, args.num_processes, args.process_id, args.timeout)
    if check is not None:
        check()
    processes.initialize(args.coordinator, args.num_processes, args.process_id, args.timeout)
    return processes.count() > 1


def peer_lost(line: str) -> None:
    """Say that another process of a multi-process run stopped, and end this one with EXIT_FAILED.

    Called from the main thread (a broken collective) or from the heartbeat watchdog's
    (a silent peer, the main thread stuck in a collective). A normal exit would wait in
    JAX's shutdown barrier for the process that is gone, then abort with a page of log.
    """
    print(line, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(EXIT_FAILED)


def fmt(x, none: str = "-") -> str:
    return none if x is None else f"{x:.4g}"


def say(quiet: bool):
    """Progress: ``print`` to stderr with flush, or nothing when ``quiet`` (stdout is for the verdict)."""
    return (lambda line: None) if quiet else (lambda line: print(line, file=sys.stderr, flush=True))


class Progress:
    """A tqdm bar on stderr with an ETA: off when ``enabled`` is false or stderr is not a terminal.

    Called as ``progress(done, total)``; the first call of a resumed run sets tqdm's
    ``initial``, so the rate and the ETA count this process's work only.
    """

    def __init__(self, enabled: bool, unit: str = "step"):
        self.enabled = enabled and sys.stderr.isatty()
        self.unit = unit
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit=self.unit, file=sys.stderr, dynamic_ncols=True, leave=False)
            return
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def add_verbose_arg(p) -> None:
    p.add_argument("--verbose", action="store_true", help="print the full tables too (they are always in OUT/report.txt)")


def finish_report(out, verbose: bool, files: list | tuple = ()) -> None:
    """Write OUT/report.txt and OUT/report.html, then print the verdict (the full tables first with
    --verbose) and where everything is."""
    from hivemind import report

    r = report.write(out)
    if verbose:
        print(r.text)
        print()
    print("\n".join(r.verdict))
    if files:
        print(f"results: {', '.join(str(f) for f in files)}")
    print(f"full tables: {out / report.TEXT}; to look at: {out / report.HTML}")
