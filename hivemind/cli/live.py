"""``hivemind live``: language-model agents converse around the anchor; with --grid or --seeds, a live sweep."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from hivemind.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    add_formats_arg,
    add_grid_arg,
    add_scenario_args,
    add_verbose_arg,
    claim,
    finish_report,
    load,
    out_dir,
    parse_grid,
    positive_int,
)
from hivemind.cli.common import say as make_say
from hivemind.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("live", help="language-model agents converse around the anchor (the [live] section), against the theory")
    add_scenario_args(p)
    p.add_argument("--out", default=None, help="output directory (default: runs/<scenario name>)")
    p.add_argument("--resume", action="store_true", help="continue the transcript in OUT without regenerating its messages")
    p.add_argument("--force", action="store_true", help="overwrite the results of an earlier live run in OUT")
    add_formats_arg(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines: only the verdict")
    add_verbose_arg(p)
    add_grid_arg(p, "sweep live runs over a key (as in hivemind sweep); repeat for more keys")
    p.add_argument("--seeds", type=positive_int, default=1, help="live.seed, live.seed + 1, ... at every grid point (default 1)")
    p.set_defaults(func=cmd_live)


def cmd_live_sweep(args, scenario, grid) -> int:
    from hivemind.io import outdir
    from hivemind.live.sweep import format_sweep, sweep_live
    from hivemind.scenario.grid import Grid

    formats = args.formats
    grid = grid or Grid(("live.seed",), ((scenario.live.seed,),))
    out = claim(args, out_dir(args.out or str(Path("runs") / f"{scenario.name}_sweep")))
    busy = outdir.check_out(out, args.resume, args.force)
    if busy and args.force:
        for name in ("live_sweep.csv", "live_sweep.json", "live_sweep.png", "live_sweep.pdf", "live_sweep.svg"):
            (out / name).unlink(missing_ok=True)
    say = make_say(args.quiet)
    total = math.prod(grid.shape)
    plural = lambda n, what: f"{n} {what}{'s' if n > 1 else ''}"  # noqa: E731
    say(f"live sweep of {scenario.name}: {plural(total, 'point')} x {plural(args.seeds, 'seed')}")
    hint = " ".join(["hivemind live", args.scenario, "--out", str(out), *(f"--grid {g}" for g in args.grid)])
    hint += f" --seeds {args.seeds}" + "".join(f" --set {o}" for o in args.overrides) + " --resume"
    try:
        result = sweep_live(scenario, grid, out, seeds=args.seeds, resume=args.resume, say=say, formats=formats)
    except KeyboardInterrupt:
        print(f"interrupted: every finished message is kept under {out}; resume with: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(format_sweep(result.table, grid.keys))
    print(f"results: {', '.join(str(p) for p in result.files)}")
    return EXIT_OK


def cmd_live(args) -> int:
    from hivemind.io import outdir
    from hivemind.live.conversation import TRANSCRIPT
    from hivemind.live.run import OUTPUTS, run_live

    formats = args.formats
    grid = parse_grid(args.grid) if args.grid else None  # a malformed --grid is refused before the scenario is read
    scenario = load(args, engine=False)
    if scenario.live is not None and (args.grid or args.seeds > 1):
        return cmd_live_sweep(args, scenario, grid)
    if scenario.live is None:
        raise UsageError(f"{args.scenario}: has no [live] section (see scenarios/live_quickstart.toml)")
    out = claim(args, out_dir(args.out or str(Path("runs") / scenario.name)))
    # The rule `hivemind run` follows: requeued job scripts pass --resume every time, so the
    # first attempt, with no transcript yet, starts afresh.
    mode = outdir.resume_mode(out, scenario.fingerprint, args.resume, args.force, (out / TRANSCRIPT).is_file())
    resume = mode == "resume"
    if mode == "restart":
        print(f"{out}: no {TRANSCRIPT} to resume from; starting from round 0", flush=True)
    if mode != "resume":  # --force, or a restart: no earlier result may stay beside the new one
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)
    say = make_say(args.quiet)
    live = scenario.live
    a = scenario.arrays
    rounds = f"{live.rounds} round{'s' if live.rounds > 1 else ''}"
    decoding = f"{' and '.join(live.decodings)} decoding"
    if live.anchored:
        say(
            f"{scenario.name}: {a.n_nodes - 1} agents around anchor {a.labels[scenario.anchor_index]}, {rounds}, "
            f"{decoding}, rule: {live.rule.describe()}"
        )
    else:
        say(f"{scenario.name}: {a.n_nodes} agents discussing {live.topic!r} without an anchor, {rounds}, {decoding}")
    hint = " ".join(["hivemind live", args.scenario, "--out", str(out), *(f"--set {o}" for o in args.overrides), "--resume"])
    try:
        result = run_live(scenario, out, resume=resume, say=say, formats=formats)
    except KeyboardInterrupt:
        print(f"interrupted: every finished message is in {out / TRANSCRIPT}; resume with: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InputError:  # a model file, a key, a prompt: named in one line by main
        raise
    except RuntimeError as e:  # llama.cpp or a server failing mid-run: the transcript so far is kept
        from hivemind.live.backends.server import ServerError

        what = "" if isinstance(e, ServerError) else "llama.cpp failed: "
        line = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"{what}{line}; every finished message is in {out / TRANSCRIPT}; resume with: {hint}", file=sys.stderr)
        return EXIT_FAILED
    finish_report(out, args.verbose, result.files)
    return EXIT_OK
