"""``hivemind sweep``: a grid of scenarios (a phase diagram) as one compiled, batched computation."""

from __future__ import annotations

import math
import sys

from hivemind.cli.common import (
    EXIT_OK,
    Progress,
    add_formats_arg,
    add_grid_arg,
    add_processes_args,
    add_scenario_args,
    add_verbose_arg,
    claim,
    describe,
    finish_report,
    join_processes,
    kernel_note,
    load,
    out_dir,
    parse_grid,
    peer_lost,
    positive_float,
    positive_int,
)
from hivemind.cli.plot import sweep_figures


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="a grid of scenarios (phase diagram) as one compiled, batched computation")
    add_scenario_args(p)
    add_grid_arg(p, "a swept key; repeat for more keys (the grid is their product)")
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds 0..K-1 at every grid point (default 1)")
    p.add_argument("--out", required=True, help="output directory for sweep.nc, sweep.json and the figure")
    p.add_argument("--tol", type=positive_float, default=1e-3, help="distance for steps_to_tolerance (default 1e-3)")
    p.add_argument("--memory", type=positive_float, default=2048, help="MB a batch of grid points may take (default 2048)")
    p.add_argument("--resume", action="store_true", help="continue a killed sweep in OUT, skipping finished batches")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_verbose_arg(p)
    add_formats_arg(p)
    add_processes_args(p, "the grid's runs are split over every process's devices")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    from hivemind.engine import processes
    from hivemind.io import outdir
    from hivemind.io.results import save_json
    from hivemind.runner.sweep import save_sweep, sweep, sweep_manifest

    formats = args.formats
    grid = parse_grid(args.grid)
    scenario = load(args)
    out = out_dir(args.out)
    several = join_processes(args)

    def decide() -> str:
        claim(args, out)
        outdir.check_out(out, args.resume, args.force)
        return "go"

    processes.agree(decide, ("go",), str(out))
    writer = processes.is_writer()
    me = f"process {processes.index()} of {processes.count()}"
    shape = " x ".join(f"{len(v)} {k}" for k, v in zip(grid.keys, grid.values, strict=True))
    total = math.prod(grid.shape)
    if not writer:
        print(f"{me}: computing its share of the sweep; process 0 writes {out}", flush=True)
    elif not args.quiet:
        print(f"{describe(scenario)}\nsweep: {shape} = {total} points x {args.seeds} seeds", file=sys.stderr)
        note = kernel_note(scenario)
        if note:
            print(note, file=sys.stderr)
        if several:
            import jax

            print(f"{processes.count()} processes, {jax.device_count()} devices", file=sys.stderr)
    bar = Progress(writer and not args.quiet, unit="point")
    words = ["hivemind sweep", args.scenario, *(f"--grid {g}" for g in args.grid), *(f"--set {o}" for o in args.overrides)]
    words += [f"--seeds {args.seeds} --tol {args.tol:g} --out {out} --resume --coordinator ... (every process, as before)"]
    hint = " ".join(words)

    def stopped(reason: str) -> None:
        bar.close()
        kept = f"the finished batches are kept in {out}/batches" if writer else "process 0 keeps the finished batches"
        peer_lost(f"{me}: another process of the sweep stopped ({reason}); {kept}; resume with: {hint}")

    # A silent process leaves this one waiting in a collective: the watchdog speaks for it.
    dog = processes.watch(args.timeout, stopped)
    try:
        ds = sweep(
            scenario,
            grid,
            seeds=args.seeds,
            tol=args.tol,
            progress=bar,
            out=out,
            resume=args.resume,
            memory=int(args.memory * 2**20),
        )
    except processes.PeerLost as e:
        stopped(str(e))
    finally:
        if dog is not None:
            dog.stop()
        bar.close()
    if not writer:
        print(f"{me}: done", flush=True)
        return EXIT_OK
    path = save_sweep(ds, out)
    save_json(sweep_manifest(scenario, grid, ds), out / "sweep.json")
    figures = sweep_figures(ds, out, formats)
    finish_report(out, args.verbose, [path, out / "sweep.json", *figures])
    return EXIT_OK
