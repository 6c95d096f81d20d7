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
from hivemind.bench.harness import Engine
from hivemind.io.results import save_json, versions
from hivemind.runner.simulate import kernel_choice
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


def sentence(doc: dict) -> str:
    """The sweep guide's paragraph on speed (docs/guide/sweeps.md; tests check it against the JSON)."""
    p = doc["profile"]
    same = (
        "identical final states"
        if doc["max_final_state_difference"] == 0
        else (f"final states equal to {doc['max_final_state_difference']:.1g}")
    )
    verdict = (
        f"The goal was {doc['goal_speedup']:g}x; it is met."
        if doc["speedup"] >= doc["goal_speedup"]
        else (
            f"The goal was {doc['goal_speedup']:g}x; it is out of reach here because the loop already batches its "
            f"{doc['seeds']} seeds and the step is bound by its arithmetic, not by dispatch or compilation: "
            f"one program stepping all {p['runs']} runs is only {p['batching_gain']:.2f}x per run the loop's "
            f"program of {doc['seeds']}."
        )
    )
    return (
        f"**Speed** (`make bench-sweep`, `benchmarks/results/sweep.json`, {doc['cpu_count']} cores, the "
        f"{doc['kernel']} kernel): {doc['points']} step sizes x {doc['seeds']} seeds of the quickstart take "
        f"{doc['sweep_seconds']:.1f} s as one sweep against {doc['loop_seconds']:.1f} s for a Python loop of "
        f"`hivemind.simulate` over the same step sizes (each with its {doc['seeds']} seeds batched): "
        f"**{doc['speedup']:.2f}x**, with {same} and no compilation in either once warm. Where the time goes: "
        f"the sweep spends {p['sweep_steps_s']:.1f} s on its steps and {p['sweep_records_s']:.1f} s on its records "
        f"(compiling took {p['sweep_compile_s']:.1f} s more on the first call); the loop {p['loop_steps_s']:.1f} s "
        f"on steps, {p['loop_records_s']:.1f} s on records and {p['loop_calls_s']:.1f} s on the work of each call "
        f"(parsing, set-up, the Dataset). On the steps alone the sweep is {p['steps_speedup']:.2f}x the loop. "
        + verdict
        + (
            " Recording (the loss, the clusters and the dispersion every 10 steps, in pure JAX) costs both more "
            "than stepping: the observations, not the pull, are where the next speed-up is."
            if p["sweep_records_s"] > p["sweep_steps_s"] and p["loop_records_s"] > p["loop_steps_s"]
            else ""
        )
        + "\n"
    )


def where_the_time_goes(path: Path, etas: list[float], seeds: tuple[int, ...], steps: int, t_sweep, t_loop, t_first) -> dict:
    """The sweep's and the loop's seconds split into compilation, steps, records and per-call work.

    Each is timed again with ``record.every = steps`` (one record, at the end): the difference is
    what recording every ``record.every`` steps costs. The loop's steps are its scenario's
    compiled step loop alone (``hivemind.bench.Engine``, all seeds of one point) once per point;
    what remains of the loop is per-call work (parsing, set-up, building the Dataset).
    """
    one_record = [f"record.every={steps}"]
    scenario = parse_scenario(path.read_text(), str(path), path.parent, one_record)
    sweep(scenario, {"dynamics.step_size": [v * 0.9 for v in etas]}, seeds=len(seeds))  # compile that program
    t0 = time.perf_counter()
    sweep(scenario, {"dynamics.step_size": etas}, seeds=len(seeds))
    sweep_steps = time.perf_counter() - t0
    simulate(parse_scenario(path.read_text(), str(path), path.parent, [*one_record, "dynamics.step_size=0.001"], seeds=seeds))
    t0 = time.perf_counter()
    for eta in etas:
        simulate(
            parse_scenario(path.read_text(), str(path), path.parent, [*one_record, f"dynamics.step_size={eta}"], seeds=seeds)
        )
    loop_no_records = time.perf_counter() - t0
    engine = Engine(parse_scenario(path.read_text(), str(path), path.parent, one_record, seeds=seeds), repeats=2)
    _, per_point, _ = engine.run(steps)
    everything = Engine(
        parse_scenario(path.read_text(), str(path), path.parent, one_record, seeds=tuple(range(len(etas) * len(seeds)))),
        repeats=1,
    )
    _, all_runs, _ = everything.run(steps)
    loop_steps = per_point * len(etas)
    return {
        "runs": len(etas) * len(seeds),
        "sweep_compile_s": max(t_first - t_sweep, 0.0),
        "sweep_steps_s": sweep_steps,
        "sweep_records_s": max(t_sweep - sweep_steps, 0.0),
        "loop_steps_s": loop_steps,
        "loop_records_s": max(t_loop - loop_no_records, 0.0),
        "loop_calls_s": max(loop_no_records - loop_steps, 0.0),
        "steps_speedup": loop_no_records / sweep_steps,
        "all_runs_in_one_program_s": all_runs,
        "batching_gain": loop_steps / all_runs,
    }


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
    profile = where_the_time_goes(path, etas, seeds, scenario.dynamics.steps, t_sweep, t_loop, t_first)
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
        "profile": profile,
        "kernel": "fused" if kernel_choice(scenario)[0] else "jax",
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
    p = profile
    print(
        f"where the time goes: sweep = steps {p['sweep_steps_s']:.1f} s + records {p['sweep_records_s']:.1f} s "
        f"(+ compilation {p['sweep_compile_s']:.1f} s on the first call); loop = steps {p['loop_steps_s']:.1f} s "
        f"+ records {p['loop_records_s']:.1f} s + per-call work {p['loop_calls_s']:.1f} s; on the steps alone the "
        f"sweep is {p['steps_speedup']:.2f}x the loop, and a step of all {p['runs']} runs in one program is "
        f"{p['batching_gain']:.2f}x per run a step of {args.seeds}"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(result, out / "sweep.json")
    print(f"wrote {out / 'sweep.json'}")


if __name__ == "__main__":
    main()
