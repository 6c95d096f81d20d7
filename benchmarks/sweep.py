"""Sweep speed: a grid of step sizes as one batched program against a Python loop of ``simulate``.

    python benchmarks/sweep.py [--points 64] [--seeds 8] [--out benchmarks/results]

The quickstart (200 agents on S^15, 3000 steps) at ``--points`` step sizes (log-spaced
in [0.002, 0.04], all stable) x ``--seeds`` seeds, two ways in the same process:

1. ``hivemind.sweep``: every point and seed in vmapped batches of one compiled program;
2. a Python loop of ``hivemind.simulate`` over the same points, each with all seeds
   batched as ``run.seeds`` (what a user would write without ``sweep``).

Both must agree (the final states, point by point); the ratio of the wall times is the
speed-up (goal: >= 5x). XLA compilations are counted during each (jax.monitoring's
backend-compile event): the sweep's must not grow with the number of points. Results
go to ``OUT/sweep.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import jax
import numpy as np

from hivemind import load_scenario, simulate
from hivemind.io.results import save_json, versions
from hivemind.runner.sweep import sweep
from hivemind.scenario import parse_scenario

ROOT = Path(__file__).resolve().parents[1]
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class Compilations:
    def __init__(self):
        self.count = 0

    def __call__(self, event: str, duration: float, **kwargs) -> None:
        self.count += event == COMPILE_EVENT

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    path = ROOT / "scenarios" / "quickstart.toml"
    scenario = load_scenario(path)
    etas = [float(v) for v in np.geomspace(0.002, 0.04, args.points)]
    seeds = tuple(range(args.seeds))

    # Warm both paths on other values of the same shapes, so that neither times a compilation;
    # the counts below then show that new values compile nothing.
    t0 = time.perf_counter()
    sweep(scenario, {"dynamics.step_size": [v * 0.9 for v in etas]}, seeds=args.seeds)
    t_first = time.perf_counter() - t0
    simulate(parse_scenario(path.read_text(), str(path), path.parent, ["dynamics.step_size=0.001"], seeds=seeds))

    with Compilations() as swept_compiles:
        t0 = time.perf_counter()
        ds = sweep(scenario, {"dynamics.step_size": etas}, seeds=args.seeds)
        t_sweep = time.perf_counter() - t0
    with Compilations() as loop_compiles:
        t0 = time.perf_counter()
        finals = []
        for eta in etas:
            s = parse_scenario(path.read_text(), str(path), path.parent, [f"dynamics.step_size={eta}"], seeds=seeds)
            finals.append(simulate(s).state.isel(step=-1).values)
        t_loop = time.perf_counter() - t0
    diff = float(np.max(np.abs(ds.final_state.values - np.stack(finals))))
    result = {
        "scenario": "quickstart",
        "points": args.points,
        "seeds": args.seeds,
        "steps": scenario.dynamics.steps,
        "max_final_state_difference": diff,
        "sweep_seconds": t_sweep,
        "sweep_seconds_first_call_with_compilation": t_first,
        "loop_seconds": t_loop,
        "speedup": t_loop / t_sweep,
        "goal_speedup": 5.0,
        "sweep_compilations": swept_compiles.count,
        "loop_compilations": loop_compiles.count,
        "cpu_count": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
        "versions": versions(),
    }
    print(
        f"{args.points} step sizes x {args.seeds} seeds of the quickstart ({scenario.dynamics.steps} steps): "
        f"sweep {t_sweep:.1f} s, loop of simulate {t_loop:.1f} s: {t_loop / t_sweep:.2f}x (goal 5x); "
        f"largest final-state difference {diff:.2g}; XLA compilations during the sweep {swept_compiles.count}, "
        f"during the loop {loop_compiles.count}"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(result, out / "sweep.json")
    print(f"wrote {out / 'sweep.json'}")


if __name__ == "__main__":
    main()
