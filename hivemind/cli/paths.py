"""``hivemind paths``: path independence, one scenario under several rules, seeds and starts."""

from __future__ import annotations

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
    p = sub.add_parser("paths", help="path independence: do rules, seeds and starts end in the same configuration?")
    add_scenario_args(p)
    p.add_argument("--out", required=True, help="output directory for paths.json and the figure")
    p.add_argument("--seeds", type=positive_int, default=4, help="run seeds per rule and start (default 4)")
    p.add_argument(
        "--rules",
        default="gradient,stochastic,gossip,adam",
        help="comma-separated rules; NAME:STEP gives one its own step size, e.g. adam:0.005 (default %(default)s)",
    )
    p.add_argument(
        "--init-seeds", type=positive_int, default=None, metavar="K", help="also vary the initial configuration over K seeds"
    )
    p.add_argument(
        "--tol", type=positive_float, default=None, help="agreement tolerance (default: from the float precision and step)"
    )
    add_formats_arg(p)
    p.set_defaults(func=cmd_paths)


def cmd_paths(args) -> int:
    from hivemind.experiments.paths import compare_paths, parse_rules
    from hivemind.io.results import save_json
    from hivemind.plot import paths_figure, save_figure

    formats = args.formats
    try:
        rules = parse_rules(args.rules)
    except ValueError as e:
        raise UsageError(f"--rules: {e}") from None
    scenario = load(args)
    out = claim(args, out_dir(args.out))
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
        f"largest spread between endpoints {fmt(data['max_spread'], 'inf')}, largest distance to the anchor's state "
        f"{fmt(data['max_gap'], 'inf')}; tolerance {report.tol:.3g} ({report.tol_reason})"
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
