"""``hivemind fit``: forecast models fitted to any conversation's embeddings, scored and written."""

from __future__ import annotations

import sys

from hivemind.cli.common import EXIT_OK, EXIT_USAGE, UsageError, claim, out_dir
from hivemind.errors import InputError


def add_parser(sub) -> None:
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


def cmd_fit(args) -> int:
    from hivemind.live.forecast import fit, format_forecast

    if args.resamples < 0 or args.resamples > 100_000:
        raise UsageError(f"--resamples must be from 0 to 100000, got {args.resamples}")
    if args.horizon < 1:
        raise UsageError(f"--horizon must be >= 1, got {args.horizon}")
    out = claim(args, out_dir(args.out))
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
    except InputError:  # bad data, named by its file and variable: main prints it
        raise
    except ValueError as e:  # a --train that leaves no held-out round
        print(f"--train: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(format_forecast(results))
    print(f"results: {out / 'fit.json'}, {out / 'fit.png'}")
    return EXIT_OK
