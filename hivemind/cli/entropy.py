"""``hivemind entropy``: entropy and degrees of freedom against entanglement and time."""

from __future__ import annotations

import argparse
import sys

from hivemind.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_formats_arg,
    add_scenario_args,
    claim,
    describe,
    fmt,
    load,
    out_dir,
    positive_float,
    positive_int,
)


def add_parser(sub) -> None:
    p = sub.add_parser("entropy", help="entropy collapse: entropy and degrees of freedom against entanglement and time")
    add_scenario_args(p)
    p.add_argument("--out", required=True, help="output directory for entropy.csv, entropy.json, entropy.nc and the figure")
    p.add_argument(
        "--lambdas", type=lambdas, default="0,0.25,0.5,0.75,1", help="entanglement levels in [0, 1] (default %(default)s)"
    )
    p.add_argument("--samples", type=positive_int, default=64, help="ensemble size: seeds with independent starts (default 64)")
    p.add_argument("--k", type=positive_int, default=3, help="neighbour order of the kNN estimator (default 3)")
    p.add_argument("--resolution", type=positive_float, default=1e-3, help="delta of the resolved dimension (default 1e-3)")
    add_formats_arg(p)
    p.set_defaults(func=cmd_entropy)


def lambdas(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers in [0, 1], got {text!r}") from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers in [0, 1], got {text!r}")
    return sorted(set(values))


def cmd_entropy(args) -> int:
    from hivemind.experiments.entropy import collapse_slope, entropy_collapse, predicted_collapse_slope, summary_table
    from hivemind.io.results import finite_or_none, save_csv, save_dataset, save_json
    from hivemind.plot import entropy_figure, save_figure
    from hivemind.runner.simulate import SimulationDiverged

    lambdas = args.lambdas
    formats = args.formats
    scenario = load(args)
    out = claim(args, out_dir(args.out))
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
            f"{r['lambda']:>8.2f}{fmt(r['gaussian_entropy']):>13}{fmt(r['knn_entropy']):>11}"
            f"{fmt(r['participation_ratio']):>11}{fmt(r['resolved_dimension']):>14}"
        )
    if measured is not None:
        line = f"entropy at lambda = 1 falls by {-measured:.4g} nats per step"
        if predicted is not None:
            line += f"; the grounded Laplacian predicts {-predicted:.4g} (d x rate, {abs(measured / predicted - 1):.1%} apart)"
        print(line)
    print(f"results: {out / 'entropy.csv'}, {out / 'entropy.json'}, {out / 'entropy.nc'}; figure {', '.join(map(str, figures))}")
    return EXIT_OK
