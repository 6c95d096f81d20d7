"""The ``hivemind`` command: parse, call the API, print. It computes nothing itself."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from hivemind.engine.checkpoint import CheckpointError
from hivemind.engine.manifolds import get_manifold
from hivemind.io import outdir
from hivemind.io.results import RunDirError, summarize
from hivemind.io.scenario import Scenario, ScenarioError, load_scenario

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


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
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in OUT from its last checkpoint")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")
    g = p.add_argument_group("several processes (jax.distributed; run.shard = seeds or agents)")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address, or 'auto' to read a SLURM (or similar) job")
    g.add_argument("--num-processes", type=int, metavar="N", help="how many processes run this scenario together")
    g.add_argument("--process-id", type=int, metavar="I", help="this process's index in [0, N); process 0 writes OUT")
    g.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="seconds to wait for every process to connect (default 60)"
    )
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

    p = sub.add_parser("paths", help="path independence: do rules, seeds and starts end in the same configuration?")
    _add_scenario_args(p)
    p.add_argument("--out", required=True, help="output directory for paths.json and the figure")
    p.add_argument("--seeds", type=int, default=4, help="run seeds per rule and start (default 4)")
    p.add_argument(
        "--rules",
        default="gradient,stochastic,gossip,adam",
        help="comma-separated rules; NAME:STEP gives one its own step size, e.g. adam:0.005 (default %(default)s)",
    )
    p.add_argument("--init-seeds", type=int, default=None, metavar="K", help="also vary the initial configuration over K seeds")
    p.add_argument("--tol", type=float, default=None, help="agreement tolerance (default: from the float precision and step)")
    p.add_argument("--formats", default="png,pdf", help="figure formats (default: png,pdf)")
    p.set_defaults(func=cmd_paths)

    p = sub.add_parser("entropy", help="entropy collapse: entropy and degrees of freedom against entanglement and time")
    _add_scenario_args(p)
    p.add_argument("--out", required=True, help="output directory for entropy.csv, entropy.json, entropy.nc and the figure")
    p.add_argument("--lambdas", default="0,0.25,0.5,0.75,1", help="entanglement levels in [0, 1] (default %(default)s)")
    p.add_argument("--samples", type=int, default=64, help="ensemble size: seeds with independent starts (default 64)")
    p.add_argument("--k", type=int, default=3, help="neighbour order of the kNN estimator (default 3)")
    p.add_argument("--resolution", type=float, default=1e-3, help="delta of the resolved dimension (default 1e-3)")
    p.add_argument("--formats", default="png,pdf", help="figure formats (default: png,pdf)")
    p.set_defaults(func=cmd_entropy)

    p = sub.add_parser("bench", help="race the engine against numpy, a per-agent loop and geomstats; ratios and goals")
    p.add_argument("--out", default="benchmarks/results", help="where bench.json and bench.png go (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="small sizes only (seconds, for a smoke test)")
    p.add_argument("--sizes", default=None, help="comma-separated agent counts (default 1000,10000,100000,1000000)")
    p.add_argument("--formats", default="png", help="figure formats (default: png)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("live", help="language-model agents converse around the anchor (the [live] section), against the theory")
    _add_scenario_args(p)
    p.add_argument("--out", default=None, help="output directory (default: runs/<scenario name>)")
    p.add_argument("--resume", action="store_true", help="continue the transcript in OUT without regenerating its messages")
    p.add_argument("--force", action="store_true", help="overwrite the results of an earlier live run in OUT")
    p.add_argument("--formats", default="png,pdf", help="figure formats (default: png,pdf)")
    p.add_argument("--quiet", action="store_true", help="only the summary table")
    _add_grid_arg(p, "sweep live runs over a key (as in hivemind sweep); repeat for more keys")
    p.add_argument("--seeds", type=int, default=1, help="live.seed, live.seed + 1, ... at every grid point (default 1)")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("sweep", help="a grid of scenarios (phase diagram) as one compiled, batched computation")
    _add_scenario_args(p)
    _add_grid_arg(p, "a swept key; repeat for more keys (the grid is their product)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..K-1 at every grid point (default 1)")
    p.add_argument("--out", required=True, help="output directory for sweep.nc, sweep.json and the figure")
    p.add_argument("--tol", type=float, default=1e-3, help="distance for steps_to_tolerance (default 1e-3)")
    p.add_argument("--memory", type=float, default=2048, help="MB a batch of grid points may take (default 2048)")
    p.add_argument("--resume", action="store_true", help="continue a killed sweep in OUT, skipping finished batches")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--formats", default="png,pdf", help="figure formats (default: png,pdf)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("fit", help="fit and score forecast models of any conversation's embeddings (a live run or a NetCDF file)")
    p.add_argument("data", help="a live run's directory, or a NetCDF file with embedding(round, agent, coord)")
    p.add_argument("--out", required=True, help="output directory for fit.json and fit.png")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the intervals (0: none)")
    p.add_argument(
        "--intervals",
        choices=("parametric", "blocks", "refit"),
        default="parametric",
        help="parametric: conversations simulated from each fit; blocks: blocks of rounds resampled (default: parametric)",
    )
    p.add_argument("--train", type=int, default=None, help="transitions to fit on (default: half); the rest are scored")
    p.add_argument("--horizon", type=int, default=3, help="longest lead time scored, in rounds")
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("validate", help="check a scenario file without running it")
    _add_scenario_args(p)
    p.set_defaults(func=cmd_validate)
    return parser


def describe(s: Scenario) -> str:
    a = s.arrays
    symbol = get_manifold(s.manifold.kind, s.manifold.dim).symbol
    seeds = f"{len(s.run.seeds)} seed{'s' if len(s.run.seeds) > 1 else ''}"
    text = (
        f"{s.name}: {s.manifold.kind} {symbol}^{s.manifold.dim}, {a.n_nodes} agents, {a.src.size} "
        f"{'directed ' if a.directed else ''}edges, rule {s.dynamics.rule}, {s.dynamics.steps} steps, {seeds}"
    )
    if s.live is not None:
        text += (
            f"; live: {a.n_nodes - 1} language-model agents, {s.live.rounds} rounds, "
            f"{' and '.join(s.live.decodings)} decoding, model {s.live.model}"
        )
    return text


class ProgressBar:
    """A one-line bar on stderr, redrawn in place on a terminal, quiet in logs."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.t0 = time.perf_counter()
        self.first: tuple[int, float] | None = None

    def __call__(self, done: int, total: int, unit: str = "step") -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        elapsed = time.perf_counter() - self.t0
        if self.first is None:
            self.first = (done, elapsed)  # resumed work is not this process's speed
        d0, t0 = self.first
        eta = (elapsed - t0) / (done - d0) * (total - done) if done > d0 else float("nan")
        left = f", about {eta:.0f} s left" if math.isfinite(eta) and done < total else ""
        sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {unit} {done}/{total}  {elapsed:5.1f} s{left}   ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def cmd_validate(args) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    print(f"{args.scenario}: ok ({describe(scenario)})")
    return EXIT_OK


def _check_out(out: Path, resume: bool, force: bool) -> bool:
    """The --resume/--force rules every writing command shares; True if OUT already holds files."""
    if resume and force:
        raise UsageError("--resume and --force contradict each other: pick one")
    busy = out.is_dir() and any(not outdir.hidden(p.name) for p in out.iterdir())
    if busy and not resume and not force:
        raise UsageError(f"{out}: --out is not empty; pass --resume to continue the run there, or --force to overwrite it")
    return busy


def _claim(args, out: Path) -> Path:
    """Take OUT's writer lock until the command returns (a second writer gets exit status 2)."""
    try:
        return args.exit_stack.enter_context(outdir.locked(out))
    except outdir.DirectoryBusy as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"{out}: --out cannot be written: {e.strerror or e}") from None


def _prepare_out(out: Path, scenario: Scenario, resume: bool, force: bool) -> str:
    """Check that OUT may be written: 'fresh', 'resume', 'restart' (--resume, nothing to resume) or 'complete'.

    Job scripts that may be requeued pass --resume every time, so --resume with no
    checkpoint starts from step 0, unless OUT holds a finished run of another scenario.
    """
    from hivemind.engine import checkpoint

    _check_out(out, resume, force)
    if not resume:
        return "fresh"
    if checkpoint.exists(out / "checkpoint"):
        return "resume"
    meta = _manifest_of(out)
    if meta.get("status") == "complete":
        if meta.get("scenario_fingerprint") == scenario.fingerprint:
            return "complete"
        raise UsageError(
            f"{out}: holds a finished run of another scenario (or other --set values); "
            "choose another --out, or --force to overwrite it"
        )
    return "restart"


def _manifest_of(out: Path) -> dict:
    import json

    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _check_space(out: Path, scenario: Scenario) -> None:
    """Refuse a run whose records cannot fit the free space of OUT's filesystem, before it starts."""
    from hivemind.engine.atomic import free_bytes
    from hivemind.engine.records import partial_path
    from hivemind.engine.simulate import output_bytes

    grown = partial_path(out / "run.nc")
    need = output_bytes(scenario) - (grown.stat().st_size if grown.is_file() else 0)  # a resumed run has part of it
    free = free_bytes(out)
    if need <= free:
        return
    every = scenario.record.every
    fits = next((k for k in _doublings(every, scenario.dynamics.steps) if output_bytes(scenario, k) <= 0.9 * free), None)
    hint = f"record.every = {fits} would fit" if fits else "even one record per run would not fit"
    raise UsageError(
        f"{scenario.source}: record.every = {every} would write about {_bytes(need)} into {out}, "
        f"but only {_bytes(free)} are free; {hint}"
    )


def _doublings(start: int, stop: int):
    k = start
    while k < stop:
        k = min(2 * k, stop)
        yield k


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


# The outcomes of preparing OUT, as process 0 tells the others.
_MODES = ("fresh", "resume", "restart", "complete", "refused")


def _join_processes(args, scenario: Scenario) -> bool:
    """Connect to the other processes when --coordinator asks for it; whether there are several."""
    from hivemind.engine import processes

    if args.coordinator is None:
        if args.num_processes is not None or args.process_id is not None:
            raise UsageError("--num-processes and --process-id need --coordinator HOST:PORT (or --coordinator auto)")
        return False
    try:
        processes.check_setup(args.coordinator, args.num_processes, args.process_id, args.timeout)
        if scenario.run.shard == "none":
            raise processes.ProcessesError(
                f'{scenario.source}: run.shard = "none" keeps a run in one process; '
                'set run.shard = "seeds" or "agents" to spread it over several'
            )
        processes.initialize(args.coordinator, args.num_processes, args.process_id, args.timeout)
    except processes.ProcessesError as e:
        raise UsageError(str(e)) from None
    import jax

    n_dev = jax.device_count()
    if scenario.run.shard == "agents" and n_dev > scenario.arrays.n_nodes:
        raise UsageError(
            f'{scenario.source}: run.shard = "agents" splits {scenario.arrays.n_nodes} agents over {n_dev} devices '
            f"of {jax.process_count()} processes: fewer agents than devices"
        )
    return jax.process_count() > 1


def _prepare_run(args, out: Path, scenario: Scenario, several: bool) -> str:
    """Process 0 claims and checks OUT; with several processes it tells the others what it found."""
    from hivemind.engine import processes

    refusal = None
    mode = None
    if processes.is_writer():
        try:
            _claim(args, out)
            mode = _prepare_out(out, scenario, args.resume, args.force)
            if mode != "complete":
                _check_space(out, scenario)
        except UsageError as e:
            refusal, mode = e, "refused"
    if several:
        mode = _MODES[processes.broadcast_code(None if mode is None else _MODES.index(mode))]
    if refusal is not None:
        raise refusal
    if mode == "refused":
        raise UsageError(f"{out}: process 0 refused to run there (its own message says why)")
    return mode


def cmd_run(args) -> int:
    from hivemind.engine import processes
    from hivemind.engine.simulate import RecordsWriteError, SimulationDiverged, SimulationInterrupted, simulate
    from hivemind.io.results import save_manifest

    scenario = load_scenario(args.scenario, args.overrides)
    out = _out_dir(args.out)
    several = _join_processes(args, scenario)
    mode = _prepare_run(args, out, scenario, several)
    writer = processes.is_writer()
    me = f"process {processes.index()} of {processes.count()}"
    if mode == "complete":
        if writer:
            print(f"{out}: the run of this scenario is already complete; nothing to resume")
        return EXIT_OK
    if not writer:
        print(f"{me}: computing its share of {scenario.name} (shard {scenario.run.shard}); process 0 writes {out}", flush=True)
    elif not args.quiet:
        print(describe(scenario))
        if several:
            import jax

            print(f"{processes.count()} processes, {jax.device_count()} devices, run.shard = {scenario.run.shard}")
    if mode == "restart" and writer:
        print(f"{out}: no checkpoint to resume from; starting from step 0", flush=True)
    bar = ProgressBar(writer and not args.quiet)
    resumed = []

    def progress(done: int, total: int) -> None:
        if mode == "resume" and not resumed:
            resumed.append(done)
            if not args.quiet:
                print(f"resuming from step {done} of {total}", flush=True)
        bar(done, total)

    hint = " ".join(["hivemind run", args.scenario, "--out", str(out), *(f"--set {o}" for o in args.overrides), "--resume"])
    if several:
        hint += " --coordinator ... (every process, as before)"
    try:
        ds = simulate(
            scenario, progress=progress, checkpoint_dir=out / "checkpoint", resume=mode == "resume", out_file=out / "run.nc"
        )
    except processes.PeerLost as e:
        bar.close()
        kept = "no checkpoint was kept" if e.step is None else f"the checkpoint at step {e.step} is kept in {out}/checkpoint"
        print(f"{me}: another process of the run stopped ({e}); {kept}; resume with: {hint}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # A normal exit would wait in JAX's shutdown barrier for the process that is gone, then abort.
        os._exit(EXIT_FAILED)
    except SimulationDiverged as e:
        bar.close()
        if not writer:
            print(f"{me}: {e}", file=sys.stderr)
            return EXIT_FAILED
        save_manifest(out, scenario, e.dataset)
        print(f"{scenario.source}: {e}; steps up to {int(e.dataset.step[-1])} saved in {out}/run.nc", file=sys.stderr)
        return EXIT_FAILED
    except SimulationInterrupted as e:
        bar.close()
        if not writer:
            return EXIT_INTERRUPTED
        save_manifest(out, scenario, e.dataset)
        print(
            f"interrupted at step {e.step}: what was recorded is in {out}/run.nc; resume with: {hint}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except RecordsWriteError as e:
        bar.close()
        kept = "nothing could be kept" if e.step is None else f"the checkpoint at step {e.step} is kept in {out}/checkpoint"
        print(f"{e}; {kept}; free space and resume with: {hint}", file=sys.stderr)
        return EXIT_FAILED
    bar.close()
    if not writer:
        print(f"{me}: done", flush=True)
        return EXIT_OK
    try:
        save_manifest(out, scenario, ds)
    except OSError as e:
        print(f"the run is complete in {out}/run.nc, but manifest.json cannot be written: {e.strerror or e}", file=sys.stderr)
        return EXIT_FAILED
    s = summarize(ds)
    nearest = "the nearest anchor" if len(scenario.anchors) > 1 else "the anchor"
    print(
        f"done in {ds.attrs['wall_time_s']:.1f} s: mean distance to {nearest} {s['initial_distance_mean']:.3g} -> "
        f"{s['final_distance_mean']:.3g}; {s['agents_reached']:g}/{s['agents']} agents within {s['reached_tol']:g} "
        f"of {nearest} ({s['agents_reachable']} can hear {'one' if len(scenario.anchors) > 1 else 'it'})"
    )
    split = (
        f"clusters (within {ds.attrs['cluster_tol']:g}): {s['final_clusters']:g}, the largest holding "
        f"{s['final_largest_cluster_share']:.0%} of the agents; dispersion {s['final_dispersion']:.3g}"
    )
    if "final_anchor_share" in s:
        labels = [str(scenario.arrays.labels[i]) for i in scenario.anchor_indices]
        split += "; nearest anchor: " + ", ".join(
            f"{lab} {v:.0%}" for lab, v in zip(labels, s["final_anchor_share"], strict=True)
        )
    print(split)
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

    from hivemind.engine.simulate import SimulationDiverged, simulate
    from hivemind.theory import mean_distance_of_hearers, rate_report

    _positive("--tol", args.tol)
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
    if pred["stable"] and not report.get("note"):
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
    elif report.get("note"):
        print(f"measured:  the run {report['note']} (below)")
    else:
        print("measured:  too few points above the precision floor to fit a rate (run longer or with a smaller step)")
    if not report.get("note"):
        below = np.flatnonzero(mean < args.tol)
        print(f"measured steps to reach {args.tol:g}: {int(ds.step.values[below[0]]) if below.size else 'not reached'}")
    _print_equilibrium(scenario, ds)
    return EXIT_OK


def _print_equilibrium(scenario: Scenario, ds) -> None:
    """Where the run should end (not only how fast), against where it ended, agent by agent."""
    from hivemind.theory import equilibrium_report

    report = equilibrium_report(scenario, ds)
    if report is None:
        return
    print(
        f"equilibrium ({report['method']}): {report['iterations']} iterations, residual {report['residual']:.2g}; "
        f"the run's endpoint is {report['max_error']:.3g} from it at most ({report['mean_error']:.3g} on average), "
        f"and {report['mean_distance_to_anchor']:.3g} from the nearest anchor on average"
    )
    meas = report["measured_rate_to_fixed_point"]
    if meas:
        print(
            f"measured approach to the equilibrium: x{meas['rho']:.6f} per step (rate {meas['rate']:.6g}), "
            f"fit over steps {meas['first_step']}-{meas['last_step']}, R^2 {meas['r2']:.5f}"
        )


def _formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    known = {"png", "pdf", "svg"}
    if not formats or not set(formats) <= known:
        raise UsageError(f"--formats must be a comma-separated subset of {', '.join(sorted(known))}, got {text!r}")
    return formats


def _out_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: --out exists and is not a directory")
    return out


def _positive(name: str, value, integer: bool = False):
    import math

    if value is not None and not (value > 0 and math.isfinite(value)):
        raise UsageError(f"{name} must be {'an integer' if integer else 'a finite number'} > 0, got {value}")
    return value


def cmd_paths(args) -> int:
    from hivemind.io.results import save_json
    from hivemind.plot import paths_figure, save_figure
    from hivemind.theory.paths import compare_paths, parse_rules

    _positive("--seeds", args.seeds, integer=True)
    _positive("--init-seeds", args.init_seeds, integer=True)
    _positive("--tol", args.tol)
    formats = _formats(args.formats)
    try:
        rules = parse_rules(args.rules)
    except ValueError as e:
        raise UsageError(f"--rules: {e}") from None
    scenario = load_scenario(args.scenario, args.overrides)
    out = _claim(args, _out_dir(args.out))
    print(describe(scenario))
    init_seeds = None if args.init_seeds is None else list(range(args.init_seeds))
    report = compare_paths(
        scenario, rules, seeds=range(args.seeds), init_seeds=init_seeds, tol=args.tol, progress=lambda m: print(f"  running {m}")
    )
    for note in report.notes:
        print(f"note: {note}")
    print(f"{'rule':<18}{'runs':>6}{'diverged':>10}{'mean final dist':>17}{'max final dist':>16}")
    for row in report.rule_rows():
        print(
            f"{row['rule']:<18}{row['runs']:>6}{row['diverged']:>10}"
            f"{row['mean_final_distance']:>17.3g}{row['max_final_distance']:>16.3g}"
        )
    data = report.to_dict()
    print(
        f"largest spread between endpoints {_fmt(data['max_spread'], 'inf')}, largest distance to the anchor's state "
        f"{_fmt(data['max_gap'], 'inf')}; tolerance {report.tol:.3g} ({report.tol_reason})"
    )
    save_json(data, out / "paths.json")
    figures = save_figure(paths_figure(report), out / "paths", formats)
    n = data["agents"]
    if report.agrees:
        print(f"verdict: AGREE: all {n} agents end at the anchor's state in every run, within {report.tol:.3g}")
    else:
        bad = report.disagreeing
        named = "; ".join(f"{report.labels[i]} ({report.reason(i)})" for i in bad[:10])
        more = f"; and {bad.size - 10} more" if bad.size > 10 else ""
        print(f"verdict: DISAGREE: {bad.size} of {n} agents: {named}{more}")
    print(f"results: {out / 'paths.json'}, figure {', '.join(str(p) for p in figures)}")
    return EXIT_OK if report.agrees else EXIT_FAILED


def _lambdas(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"--lambdas must be comma-separated numbers in [0, 1], got {text!r}") from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise UsageError(f"--lambdas must be comma-separated numbers in [0, 1], got {text!r}")
    return sorted(set(values))


def cmd_entropy(args) -> int:
    from hivemind.engine.simulate import SimulationDiverged
    from hivemind.io.results import finite_or_none, save_csv, save_dataset, save_json
    from hivemind.plot import entropy_figure, save_figure
    from hivemind.theory.entropy import collapse_slope, entropy_collapse, predicted_collapse_slope, summary_table

    lambdas = _lambdas(args.lambdas)
    _positive("--samples", args.samples, integer=True)
    _positive("--k", args.k, integer=True)
    _positive("--resolution", args.resolution)
    formats = _formats(args.formats)
    scenario = load_scenario(args.scenario, args.overrides)
    out = _claim(args, _out_dir(args.out))
    d = scenario.manifold.dim
    if args.samples <= d + 1:
        raise UsageError(f"--samples must exceed manifold.dim + 1 = {d + 1} for a full-rank covariance, got {args.samples}")
    if args.k >= args.samples:
        raise UsageError(f"--k must be below --samples ({args.samples}), got {args.k}")
    print(describe(scenario))
    print(f"  {args.samples} samples with independent starts, lambda in {lambdas}")
    try:
        result = entropy_collapse(scenario, lambdas, args.samples, args.k, args.resolution)
    except SimulationDiverged as e:
        print(f"{scenario.source}: {e}; no entropy to estimate", file=sys.stderr)
        return EXIT_FAILED
    table = summary_table(result)
    predicted = predicted_collapse_slope(scenario)
    measured = collapse_slope(result) if 1.0 in lambdas else None

    save_csv(table.to_dataframe().reset_index(), out / "entropy.csv")
    save_dataset(result, out / "entropy.nc")
    final = table.isel(step=-1)
    rows = [
        {
            "lambda": float(lam),
            "gaussian_entropy": finite_or_none(final.gaussian_entropy.sel(lam=lam)),
            "knn_entropy": finite_or_none(final.knn_entropy.sel(lam=lam)),
            "participation_ratio": finite_or_none(final.participation_ratio.sel(lam=lam)),
            "resolved_dimension": finite_or_none(final.resolved_dimension.sel(lam=lam)),
        }
        for lam in table.lam.values
    ]
    save_json(
        {
            "scenario": scenario.name,
            "step": int(table.step[-1]),
            "samples": args.samples,
            "k": args.k,
            "resolution": args.resolution,
            "dim": d,
            "final": rows,
            "collapse_slope_measured": measured,
            "collapse_slope_predicted": predicted,
        },
        out / "entropy.json",
    )
    figures = save_figure(entropy_figure(result, predicted), out / "entropy", formats)
    print(f"at step {int(table.step[-1])} (mean over agents that hear the anchor; entropies in nats):")
    print(f"{'lambda':>8}{'Gaussian H':>13}{'kNN H':>11}{'particip.':>11}{'resolved dim':>14}")
    for r in rows:
        print(
            f"{r['lambda']:>8.2f}{_fmt(r['gaussian_entropy']):>13}{_fmt(r['knn_entropy']):>11}"
            f"{_fmt(r['participation_ratio']):>11}{_fmt(r['resolved_dimension']):>14}"
        )
    if measured is not None:
        line = f"entropy at lambda = 1 falls by {-measured:.4g} nats per step"
        if predicted is not None:
            line += f"; the grounded Laplacian predicts {-predicted:.4g} (d x rate, {abs(measured / predicted - 1):.1%} apart)"
        print(line)
    print(f"results: {out / 'entropy.csv'}, {out / 'entropy.json'}, {out / 'entropy.nc'}; figure {', '.join(map(str, figures))}")
    return EXIT_OK


def _fmt(x, none: str = "-") -> str:
    return none if x is None else f"{x:.4g}"


def cmd_bench(args) -> int:
    from dataclasses import replace

    from hivemind import bench

    formats = _formats(args.formats)
    opts = bench.QUICK if args.quick else bench.BenchOptions()
    if args.sizes is not None:
        try:
            sizes = tuple(int(v) for v in args.sizes.split(","))
        except ValueError:
            raise UsageError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from None
        if not sizes or min(sizes) < 10:
            raise UsageError(f"--sizes must be integers >= 10, got {args.sizes!r}")
        opts = replace(opts, sizes=sizes, goal_n=sizes[-1] if opts.goal_n not in sizes else opts.goal_n)
    out = _out_dir(args.out)
    result = bench.run_bench(opts)
    print(bench.report(result))
    for path in bench.save(result, out, formats):
        print(f"wrote {path}")
    return EXIT_OK if result["agree"] else EXIT_FAILED


def _add_grid_arg(p, what: str) -> None:
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=VALUES",
        help=f"{what}: comma-separated values, lin:A:B:N or log:A:B:N",
    )


def _parse_grid(items: list[str]):
    from hivemind.engine.sweep import SweepError, make_grid, parse_values

    try:
        grid = {}
        for item in items:
            key, sep, spec = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--grid expects KEY=VALUES, got {item!r}")
            if key.strip() in grid:
                raise UsageError(f"--grid {key.strip()}: given twice")
            grid[key.strip()] = parse_values(key.strip(), spec)
        return make_grid(grid)
    except SweepError as e:
        raise UsageError(str(e)) from None


def cmd_live_sweep(args, scenario, grid) -> int:
    from hivemind.engine.sweep import Grid, SweepError
    from hivemind.live.conversation import LiveError
    from hivemind.live.model import ModelError
    from hivemind.live.sweep import format_sweep, sweep_live

    formats = _formats(args.formats)
    grid = grid or Grid(("live.seed",), ((scenario.live.seed,),))
    out = _claim(args, _out_dir(args.out or str(Path("runs") / f"{scenario.name}_sweep")))
    busy = _check_out(out, args.resume, args.force)
    if busy and args.force:
        for name in ("live_sweep.csv", "live_sweep.json", "live_sweep.png", "live_sweep.pdf", "live_sweep.svg"):
            (out / name).unlink(missing_ok=True)
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    total = int(np.prod(grid.shape))
    plural = lambda n, what: f"{n} {what}{'s' if n > 1 else ''}"  # noqa: E731
    say(f"live sweep of {scenario.name}: {plural(total, 'point')} x {plural(args.seeds, 'seed')}")
    hint = " ".join(["hivemind live", args.scenario, "--out", str(out), *(f"--grid {g}" for g in args.grid)])
    hint += f" --seeds {args.seeds}" + "".join(f" --set {o}" for o in args.overrides) + " --resume"
    try:
        result = sweep_live(scenario, grid, out, seeds=args.seeds, resume=args.resume, say=say, formats=formats)
    except KeyboardInterrupt:
        print(f"interrupted: every finished message is kept under {out}; resume with: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (LiveError, ModelError, SweepError) as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    print(format_sweep(result.table, grid.keys))
    print(f"results: {', '.join(str(p) for p in result.files)}")
    return EXIT_OK


def cmd_live(args) -> int:
    from hivemind.live.conversation import TRANSCRIPT, LiveError
    from hivemind.live.model import ModelError
    from hivemind.live.run import OUTPUTS, format_table, run_live

    formats = _formats(args.formats)
    _positive("--seeds", args.seeds, integer=True)
    grid = _parse_grid(args.grid) if args.grid else None  # a malformed --grid is refused before the scenario is read
    scenario = load_scenario(args.scenario, args.overrides)
    if scenario.live is not None and (args.grid or args.seeds > 1):
        return cmd_live_sweep(args, scenario, grid)
    if scenario.live is None:
        raise UsageError(f"{args.scenario}: has no [live] section (see scenarios/live_quickstart.toml)")
    out = _claim(args, _out_dir(args.out or str(Path("runs") / scenario.name)))
    busy = _check_out(out, args.resume, args.force)
    resume = args.resume
    if resume and not (out / TRANSCRIPT).is_file():
        # Requeued job scripts pass --resume every time: the first attempt starts afresh.
        print(f"{out}: no {TRANSCRIPT} to resume from; starting from round 0", flush=True)
        resume = False
    if busy and (args.force or (args.resume and not resume)):
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)
    say = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    live = scenario.live
    a = scenario.arrays
    rounds = f"{live.rounds} round{'s' if live.rounds > 1 else ''}"
    say(
        f"{scenario.name}: {a.n_nodes - 1} agents around anchor {a.labels[scenario.anchor_index]}, {rounds}, "
        f"{' and '.join(live.decodings)} decoding, rule: {live.rule.describe()}"
    )
    hint = " ".join(["hivemind live", args.scenario, "--out", str(out), *(f"--set {o}" for o in args.overrides), "--resume"])
    try:
        result = run_live(scenario, out, resume=resume, say=say, formats=formats)
    except KeyboardInterrupt:
        print(f"interrupted: every finished message is in {out / TRANSCRIPT}; resume with: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (LiveError, ModelError) as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as e:  # llama.cpp failing mid-run: the transcript so far is kept
        print(f"llama.cpp failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}; resume with: {hint}", file=sys.stderr)
        return EXIT_FAILED
    print(format_table(result.summary))
    print(f"results: {', '.join(str(p) for p in result.files)}")
    return EXIT_OK


def cmd_sweep(args) -> int:
    from hivemind.engine.sweep import SweepError, save_sweep, sweep, sweep_manifest

    formats = _formats(args.formats)
    _positive("--seeds", args.seeds, integer=True)
    _positive("--tol", args.tol)
    _positive("--memory", args.memory)
    grid = _parse_grid(args.grid)
    scenario = load_scenario(args.scenario, args.overrides)
    out = _claim(args, _out_dir(args.out))
    _check_out(out, args.resume, args.force)
    shape = " x ".join(f"{len(v)} {k}" for k, v in zip(grid.keys, grid.values, strict=True))
    total = int(np.prod(grid.shape))
    if not args.quiet:
        print(f"{describe(scenario)}\nsweep: {shape} = {total} points x {args.seeds} seeds")
    bar = ProgressBar(not args.quiet)
    try:
        ds = sweep(
            scenario,
            grid,
            seeds=args.seeds,
            tol=args.tol,
            progress=lambda d, t: bar(d, t, unit="point"),
            out=out,
            resume=args.resume,
            memory=int(args.memory * 2**20),
        )
    except SweepError as e:
        bar.close()
        raise UsageError(str(e)) from None
    bar.close()
    path = save_sweep(ds, out)
    from hivemind.io.results import save_json

    save_json(sweep_manifest(scenario, grid, ds), out / "sweep.json")
    figures = _sweep_figures(ds, out, formats)
    _print_sweep(ds)
    print(f"results: {path}, {out / 'sweep.json'}" + (f"; figure {', '.join(str(f) for f in figures)}" if figures else ""))
    return EXIT_OK


def _sweep_figures(ds, out: Path, formats) -> list[Path]:
    from hivemind.plot import save_figure, sweep_figure

    return save_figure(sweep_figure(ds), out / "sweep", formats)


def _print_sweep(ds) -> None:
    """The grid as a table: one row per point, the seeds' mean."""
    from hivemind.engine.sweep import swept_keys

    keys = swept_keys(ds)
    flat = ds[["final_mean_distance", "steps_to_tolerance", "clusters", "diverged"]].mean("seed").stack(point=keys)
    header = "".join(f"{k:>22}" for k in keys) + f"{'final mean dist':>17}{'steps to tol':>14}{'clusters':>10}{'diverged':>10}"
    print(header)
    rows = flat.point.size
    shown = range(rows) if rows <= 40 else [*range(20), *range(rows - 20, rows)]
    for i in shown:
        p = flat.isel(point=i)
        cells = "".join(
            f"{str(p[k].item()):>22}" if not isinstance(p[k].item(), float) else f"{p[k].item():>22.4g}" for k in keys
        )
        steps = p.steps_to_tolerance.item()
        print(
            f"{cells}{p.final_mean_distance.item():>17.3g}{'never' if steps != steps else f'{steps:.0f}':>14}"
            f"{p.clusters.item():>10.3g}{p.diverged.item():>10.2g}"
        )
        if rows > 40 and i == 19:
            print(f"{'...':>22}")


def cmd_plot(args) -> int:
    formats = _formats(args.formats)
    run_dir = Path(args.run_dir)
    if (run_dir / "sweep.nc").is_file():
        from hivemind.engine.records import open_result

        out = _claim(args, _out_dir(args.out or str(run_dir)))
        paths = _sweep_figures(open_result(run_dir / "sweep.nc"), out, formats)
        print(f"figures: {', '.join(str(p) for p in paths)}")
        return EXIT_OK
    if not (run_dir / "run.nc").is_file():
        raise RunDirError(f"{run_dir}: not a hivemind run (no run.nc)")
    _claim(args, _out_dir(args.out or str(run_dir / "figures")))
    _plot(args.run_dir, args.out, formats, animate=not args.no_animation)
    return EXIT_OK


def cmd_fit(args) -> int:
    from hivemind.fitting import fit, format_forecast
    from hivemind.io.trajectories import DataError

    if args.resamples < 0 or args.resamples > 100_000:
        raise UsageError(f"--resamples must be from 0 to 100000, got {args.resamples}")
    if args.horizon < 1:
        raise UsageError(f"--horizon must be >= 1, got {args.horizon}")
    out = _claim(args, _out_dir(args.out))
    try:
        results = fit(
            args.data,
            out,
            resamples=args.resamples,
            train=args.train,
            horizon=args.horizon,
            seed=args.seed,
            method=args.intervals,
        )
    except DataError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    except ValueError as e:  # a --train that leaves no held-out round
        print(f"--train: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(format_forecast(results))
    print(f"results: {out / 'fit.json'}, {out / 'fit.png'}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    import contextlib

    args = build_parser().parse_args(argv)
    with contextlib.ExitStack() as args.exit_stack:
        try:
            return args.func(args)
        except (ScenarioError, RunDirError, UsageError, CheckpointError) as e:
            print(str(e), file=sys.stderr)
            return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
