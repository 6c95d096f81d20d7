"""The ``hivemind`` command: parse, call the API, print. It computes nothing itself."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from hivemind.manifolds import get_manifold
from hivemind.results import RunDirError, save_run, summarize
from hivemind.scenario import Scenario, ScenarioError, load_scenario

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input on the command line: one line, exit status 2."""


def _add_scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="a scenario TOML file")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set dynamics.steps=500 (value read as TOML, else a string)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hivemind", description="Semantic consensus around an infinite-inertia anchor.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="simulate a scenario and write run.nc + manifest.json")
    _add_scenario_args(p)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--plot", action="store_true", help="write the figures into OUT/figures after the run")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plot", help="write the figures of a run directory into DIR/figures")
    p.add_argument("run_dir", help="a directory written by `hivemind run`")
    p.add_argument("--out", help="where to write the figures (default: RUN_DIR/figures)")
    p.add_argument("--formats", default="png,pdf", help="comma-separated figure formats (default: png,pdf)")
    p.add_argument("--no-animation", action="store_true", help="skip the GIF")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("theory", help="predicted (grounded Laplacian) against measured convergence rate of the gradient rule")
    _add_scenario_args(p)
    p.add_argument("--tol", type=float, default=1e-3, help="distance for the steps-to-tolerance prediction (default 1e-3)")
    p.set_defaults(func=cmd_theory)

    p = sub.add_parser("validate", help="check a scenario file without running it")
    _add_scenario_args(p)
    p.set_defaults(func=cmd_validate)
    return parser


def describe(s: Scenario) -> str:
    a = s.arrays
    symbol = get_manifold(s.manifold.kind, s.manifold.dim).symbol
    seeds = f"{len(s.run.seeds)} seed{'s' if len(s.run.seeds) > 1 else ''}"
    return (
        f"{s.name}: {s.manifold.kind} {symbol}^{s.manifold.dim}, {a.n_nodes} agents, {a.src.size} "
        f"{'directed ' if a.directed else ''}edges, rule {s.dynamics.rule}, {s.dynamics.steps} steps, {seeds}"
    )


class ProgressBar:
    """A one-line bar on stderr, redrawn in place on a terminal, quiet in logs."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = time.perf_counter() - self.t0
        sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] step {done}/{total}  {elapsed:5.1f} s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def cmd_validate(args) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    print(f"{args.scenario}: ok ({describe(scenario)})")
    return EXIT_OK


def cmd_run(args) -> int:
    from hivemind.simulate import SimulationDiverged, simulate

    scenario = load_scenario(args.scenario, args.overrides)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: --out exists and is not a directory")
    if not args.quiet:
        print(describe(scenario))
    bar = ProgressBar(not args.quiet)
    try:
        ds = simulate(scenario, progress=bar)
    except SimulationDiverged as e:
        bar.close()
        save_run(out, scenario, e.dataset)
        print(f"{scenario.source}: {e}; steps up to {int(e.dataset.step[-1])} saved in {out}/run.nc", file=sys.stderr)
        return EXIT_FAILED
    bar.close()
    save_run(out, scenario, ds)
    s = summarize(ds)
    print(
        f"done in {ds.attrs['wall_time_s']:.1f} s: mean distance to anchor {s['initial_distance_mean']:.3g} -> "
        f"{s['final_distance_mean']:.3g}; {s['agents_reached']:g}/{s['agents']} agents within {s['reached_tol']:g} "
        f"of the anchor ({s['agents_reachable']} can hear it)"
    )
    print(f"results: {out / 'run.nc'} and {out / 'manifest.json'}")
    if args.plot:
        _plot(out, None, ("png", "pdf"), animate=True)
    return EXIT_OK


def _plot(run_dir, out, formats, animate: bool) -> None:
    from hivemind.plot import plot_run

    paths = plot_run(run_dir, out, formats=formats, animate=animate)
    folder = paths[0].parent if paths else out
    print(f"figures: {folder}/ ({', '.join(p.name for p in paths)})")


def cmd_theory(args) -> int:
    import dataclasses
    import math

    from hivemind.simulate import SimulationDiverged, simulate
    from hivemind.theory import mean_distance_of_hearers, rate_report

    if not (args.tol > 0 and math.isfinite(args.tol)):
        raise UsageError(f"--tol must be a finite number > 0, got {args.tol}")
    scenario = load_scenario(args.scenario, args.overrides)
    if scenario.dynamics.rule != "gradient":
        print(
            f"note: the linear theory is for the gradient rule; "
            f"running {scenario.name} with rule gradient, not {scenario.dynamics.rule}"
        )
        scenario = dataclasses.replace(scenario, dynamics=dataclasses.replace(scenario.dynamics, rule="gradient"))
    print(describe(scenario))
    try:
        ds = simulate(scenario)
    except SimulationDiverged as e:
        ds = e.dataset
        print(f"the run diverged ({e}); the prediction below says why")
    report = rate_report(ds, scenario.arrays)
    if report is None:
        raise UsageError(f"{scenario.source}: theory needs at most a few thousand agents for its dense spectrum")
    pred, meas = report["predicted"], report["measured"]
    mean = mean_distance_of_hearers(ds)
    print(f"grounded Laplacian M^-1 L_g: lambda_min {pred['lambda_min']:.6g}, lambda_max {pred['lambda_max']:.6g}")
    stable = "stable" if pred["stable"] else "UNSTABLE: step_size * lambda_max >= 2 (or no agent hears the anchor)"
    print(f"predicted: x{pred['rho']:.6f} per step (rate {pred['rate']:.6g}), {stable}")
    if pred["stable"]:
        need = math.log(mean[0] / args.tol) / pred["rate"] if mean[0] > args.tol else 0.0
        print(
            f"predicted steps for the mean distance {mean[0]:.3g} to reach {args.tol:g}: {need:.0f} (asymptotic rate from step 0)"
        )
    if meas:
        err = report.get("relative_error", float("nan"))
        print(
            f"measured:  x{meas['rho']:.6f} per step (rate {meas['rate']:.6g}), "
            f"fit over steps {meas['first_step']}-{meas['last_step']}, "
            f"R^2 {meas['r2']:.5f}; relative error {err:.2%}"
        )
    else:
        print("measured:  too few points above the precision floor to fit a rate (run longer or with a smaller step)")
    below = np.flatnonzero(mean < args.tol)
    print(f"measured steps to reach {args.tol:g}: {int(ds.step.values[below[0]]) if below.size else 'not reached'}")
    return EXIT_OK


def cmd_plot(args) -> int:
    formats = tuple(f.strip().lower() for f in args.formats.split(",") if f.strip())
    known = {"png", "pdf", "svg"}
    if not formats or not set(formats) <= known:
        raise UsageError(f"--formats must be a comma-separated subset of {', '.join(sorted(known))}, got {args.formats!r}")
    _plot(args.run_dir, args.out, formats, animate=not args.no_animation)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ScenarioError, RunDirError, UsageError) as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
