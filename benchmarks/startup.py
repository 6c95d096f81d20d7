"""Startup: how long the command line takes to answer, and what the compilation cache saves.

    python benchmarks/startup.py [--repeats 5] [--out benchmarks/results]

Every figure is a fresh process's wall time (the median of ``--repeats``), measured in this
run against the alternatives beside it:

1. ``hivemind --help`` against ``python -c pass`` (the interpreter alone) and
   ``python -c "import jax"`` (what --help cost when the package imported jax eagerly);
2. ``hivemind validate scenarios/quickstart.toml``, and whether it loaded jax;
3. ``hivemind run scenarios/quickstart.toml``: the first run into an empty compilation cache,
   the second run of the same scenario (programs read from the cache), and a run with the
   cache turned off (``HIVEMIND_COMPILE_CACHE=0``: every run compiles, as before the cache),
   and a second run that leaves through the interpreter's full teardown (``sys.exit(main())``,
   what the program did before it skipped that teardown), interleaved round by round; the
   ratios are the medians of the ratios within rounds.

Goals: --help under 0.3 s; a second quickstart run under 3 s; the first run no slower than
one without the cache. Results go to ``OUT/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HIVEMIND = [sys.executable, "-m", "hivemind.cli"]
QUICKSTART = str(ROOT / "scenarios" / "quickstart.toml")
IMPORT_JAX = "python -c 'import jax'"


def wall(argv: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    return seconds


def median(argv: list[str], env: dict, repeats: int) -> tuple[float, list[float]]:
    times = [wall(argv, env) for _ in range(repeats)]
    return statistics.median(times), times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hivemind-startup-"))
    cache = work / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "HIVEMIND_"))}
    env |= {"HIVEMIND_CACHE_DIR": str(cache)}
    off = env | {"HIVEMIND_COMPILE_CACHE": "0"}
    args_run = ["run", QUICKSTART, "--out", str(work / "run"), "--force", "--quiet"]
    run = [*HIVEMIND, *args_run]
    teardown = [sys.executable, "-c", "import sys; from hivemind.cli import main; sys.exit(main(sys.argv[1:]))", *args_run]
    n = args.repeats
    try:
        rows = {}
        rows["python -c pass"] = median([sys.executable, "-c", "pass"], env, n)
        rows[IMPORT_JAX] = median([sys.executable, "-c", "import jax"], env, n)
        rows["hivemind --help"] = median([*HIVEMIND, "--help"], env, n)
        rows["hivemind validate quickstart"] = median([*HIVEMIND, "validate", QUICKSTART], env, n)
        probe = "import sys; from hivemind.cli import main; main(['validate', sys.argv[1]]); print('jax' in sys.modules)"
        loads_jax = subprocess.run(
            [sys.executable, "-c", probe, QUICKSTART], env=env, cwd=ROOT, capture_output=True, text=True
        ).stdout.split()[-1]
        # Interleaved, one of each per round, so that a machine whose speed drifts (a shared VM)
        # weighs on the three alike; the ratios are taken within each round.
        kinds = {
            "run, cache off": [],
            "run, first (empty cache)": [],
            "run, second (cache filled)": [],
            "run, second, full teardown": [],
        }
        for _ in range(n):
            kinds["run, cache off"].append(wall(run, off))
            shutil.rmtree(cache, ignore_errors=True)
            kinds["run, first (empty cache)"].append(wall(run, env))
            kinds["run, second (cache filled)"].append(wall(run, env))
            kinds["run, second, full teardown"].append(wall(teardown, env))
        for name, times in kinds.items():
            rows[name] = (statistics.median(times), times)
        ratios = {
            "second / cache off": statistics.median(
                b / a for a, b in zip(kinds["run, cache off"], kinds["run, second (cache filled)"], strict=True)
            ),
            "second / second with full teardown": statistics.median(
                b / a for a, b in zip(kinds["run, second, full teardown"], kinds["run, second (cache filled)"], strict=True)
            ),
            "first / cache off": statistics.median(
                b / a for a, b in zip(kinds["run, cache off"], kinds["run, first (empty cache)"], strict=True)
            ),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    width = max(map(len, rows))
    print(f"{'':<{width}}  median wall time ({n} fresh processes each)")
    for name, (m, _) in rows.items():
        print(f"{name:<{width}}  {m:6.2f} s")
    help_s = rows["hivemind --help"][0]
    second = rows["run, second (cache filled)"][0]
    goals = {
        "help_under_0.3_s": help_s < 0.3,
        "second_run_under_3_s": second < 3.0,
        "first_run_no_slower_than_without_cache": ratios["first / cache off"] <= 1.05,
    }
    print(
        f"--help: {help_s:.2f} s, {rows['python -c pass'][0] / help_s:.2f}x the bare interpreter's speed, "
        f"{rows[IMPORT_JAX][0] / help_s:.1f}x faster than importing jax"
    )
    print(f"validate loads jax: {loads_jax}")
    print(
        f"per round, median: second run / run without the cache {ratios['second / cache off']:.2f}; "
        f"first run / run without the cache {ratios['first / cache off']:.2f}; "
        f"second run / the same with the interpreter's full teardown {ratios['second / second with full teardown']:.2f}"
    )
    for goal, met in goals.items():
        print(f"goal {goal}: {'met' if met else 'NOT met'}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "seconds": {k: {"median": m, "all": t} for k, (m, t) in rows.items()},
        "ratios": ratios,
        "validate_loads_jax": loads_jax == "True",
        "goals": goals,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
    }
    (out / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'startup.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
