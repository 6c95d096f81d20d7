"""``hivemind design``: choose an intervention by gradient through the dynamics, beside the field's algorithms.

Everything goes through ``hivemind.design``; this parses, calls it for every budget, writes
design.json, the designed scenario(s) and the report, and prints the verdict. Every check of
the input (objective, intervention, budget, the scenario's fit to the objective) runs before
anything is written.
"""

from __future__ import annotations

from pathlib import Path

from hivemind.cli.common import EXIT_OK, UsageError, add_scenario_args, add_verbose_arg, claim, finish_report, load, out_dir

# Written out (not imported) so that `hivemind --help` loads no library; a test holds them to
# hivemind.scenario.names.
OBJECTIVES_HELP = (
    "at the FJ equilibrium: polarization_disagreement, polarization, disagreement, mean_opinion; "
    "after --horizon steps: collapse, diversity, time_to_consensus"
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "design",
        help="choose interventions (innate opinions, stubborn agents, ties, an anchor's coupling) by gradient through "
        "the dynamics, against greedy, degree, PageRank and random",
    )
    add_scenario_args(p)
    p.add_argument(
        "--objective",
        required=True,
        help=OBJECTIVES_HELP,
    )
    p.add_argument("--intervene", required=True, help="innate, stubborn, edges (reweight at a fixed total), remove, anchor")
    p.add_argument(
        "--budget",
        required=True,
        help="comma-separated budgets: the L1 size of the change (innate), agents (stubborn), ties (remove), the ties' total "
        "weight (edges; 0: as now), the couplings' range (anchor)",
    )
    p.add_argument("--out", required=True, help="output folder: design.json, designed.toml, report.html")
    p.add_argument(
        "--horizon", type=int, default=None, help="steps of the scenario's rule (collapse, diversity, time_to_consensus)"
    )
    p.add_argument("--sense", choices=("min", "max"), default=None, help="the direction (default: the objective's own)")
    p.add_argument("--steps", type=int, default=400, help="the optimiser's iterations (default 400)")
    p.add_argument("--learning-rate", type=float, default=None, help="the first step (default: 1 / the curvature at the start)")
    p.add_argument("--target", default="auto", help="stubborn: the opinion chosen agents hold: own, a number, auto (default)")
    p.add_argument(
        "--hold", choices=("expressed", "innate"), default="expressed", help="stubborn at the equilibrium: what is fixed"
    )
    p.add_argument(
        "--direction",
        choices=("both", "down", "up"),
        default="both",
        help="innate at the equilibrium: lower opinions only (down, as Musco et al.'s OptimizeInnate.m), raise only, or both",
    )
    p.add_argument(
        "--neutral",
        type=float,
        default=None,
        help="polarization about this opinion instead of the mean (0 with --direction down: OptimizeInnate.m's program)",
    )
    p.add_argument(
        "--anchor",
        choices=("coupling", "position"),
        default="coupling",
        help="--intervene anchor: move the couplings (within +-B) or the positions (each within a distance B)",
    )
    p.add_argument("--seed", type=int, default=0, help="the seed of the random choice and of the curvature estimate")
    p.add_argument("--no-compare", dest="compare", action="store_false", help="skip greedy, degree, PageRank and random")
    add_verbose_arg(p)
    p.set_defaults(func=cmd_design)


def budgets(text: str) -> list[float]:
    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise UsageError(f"--budget must be numbers separated by commas, got {text!r}") from None
    return sorted(values)


def cmd_design(args) -> int:
    from hivemind.design import design
    from hivemind.design.designed import designed_scenario
    from hivemind.design.solve import design_document
    from hivemind.io.results import save_json
    from hivemind.plot.design import design_graph
    from hivemind.report.design import GRAPH_DRAW_MAX

    wanted = budgets(args.budget)
    out = out_dir(args.out)
    scenario = load(args, engine=False)
    results = [
        design(
            scenario,
            args.objective,
            args.intervene,
            b,
            horizon=args.horizon,
            sense=args.sense,
            steps=args.steps,
            learning_rate=args.learning_rate,
            target=args.target,
            hold=args.hold,
            direction=args.direction,
            neutral=args.neutral,
            anchor=args.anchor,
            seed=args.seed,
            compare=args.compare,
        )
        for b in wanted
    ]
    out.mkdir(parents=True, exist_ok=True)
    claim(args, out)
    doc = design_document(results)
    files = [out / "design.json"]
    files.append(designed_scenario(results[-1], out))
    if len(results) > 1:
        files += [designed_scenario(r, out, f"designed_b{r.budget:g}") for r in results[:-1]]
    doc["designed"] = files[1].name
    save_json(doc, out / "design.json")
    if scenario.arrays.n_nodes <= GRAPH_DRAW_MAX:
        design_graph(results[-1], args.seed).savefig(out / "design_graph.png", dpi=110, bbox_inches="tight")
    finish_report(out, args.verbose, [Path(f) for f in files])
    return EXIT_OK
