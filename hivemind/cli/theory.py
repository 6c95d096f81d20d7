"""``hivemind theory``: the grounded Laplacian's predicted rate against the measured one, and the equilibrium."""

from __future__ import annotations

from hivemind.cli.common import EXIT_OK, UsageError, add_scenario_args, describe, load, positive_float


def add_parser(sub) -> None:
    p = sub.add_parser("theory", help="predicted (grounded Laplacian) against measured convergence rate of the gradient rule")
    add_scenario_args(p)
    p.add_argument(
        "--tol", type=positive_float, default=1e-3, help="distance for the steps-to-tolerance prediction (default 1e-3)"
    )
    p.set_defaults(func=cmd_theory)


def cmd_theory(args) -> int:
    import dataclasses
    import math

    from hivemind.runner.simulate import SimulationDiverged, simulate
    from hivemind.theory.linear import mean_distance_of_hearers, rate_report

    scenario = load(args)
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
        import numpy as np

        below = np.flatnonzero(mean < args.tol)
        print(f"measured steps to reach {args.tol:g}: {int(ds.step.values[below[0]]) if below.size else 'not reached'}")
    _print_equilibrium(scenario, ds)
    return EXIT_OK


def _print_equilibrium(scenario, ds) -> None:
    """Where the run should end (not only how fast), against where it ended, agent by agent."""
    from hivemind.theory.equilibrium import equilibrium_report

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
