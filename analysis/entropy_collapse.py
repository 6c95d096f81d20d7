"""Claim 2, entropy collapse: a node bound to the context loses its degrees of freedom.

Runs ``scenarios/quickstart.toml`` (S^15) and ``scenarios/hyperbolic.toml`` (H^2) with 64
independent starts each, and estimates every node's entropy at entanglement
lambda = 0, 0.25, 0.5, 0.75, 1 (see ``hivemind.theory.entropy``). Writes
figures/entropy_collapse_{sphere,hyperbolic}.png and figures/entropy_collapse.json.

    .venv/bin/python analysis/entropy_collapse.py
"""

from __future__ import annotations

from _common import FIGURES, SCENARIOS, write_numbers

from hivemind import load_scenario
from hivemind.experiments.entropy import collapse_slope, entropy_collapse, predicted_collapse_slope, summary_table
from hivemind.io.results import finite_or_none
from hivemind.plot import entropy_figure, save_figure

CASES = {"sphere": "quickstart.toml", "hyperbolic": "hyperbolic.toml"}


def main() -> None:
    numbers = {}
    for name, file in CASES.items():
        scenario = load_scenario(SCENARIOS / file)
        result = entropy_collapse(scenario, samples=64)
        d = scenario.manifold.dim
        predicted = predicted_collapse_slope(scenario)
        slope = collapse_slope(result)
        save_figure(entropy_figure(result, predicted), FIGURES / f"entropy_collapse_{name}", ("png",))
        final = summary_table(result).isel(step=-1)
        numbers[name] = {
            "dim": d,
            "step": int(final.step),
            "lambda": [float(v) for v in final.lam.values],
            **{k: [finite_or_none(v) for v in final[k].values] for k in final.data_vars},
            "collapse_slope_measured": slope,
            "collapse_slope_predicted": predicted,
        }
        print(f"{name} (d = {d}, step {int(final.step)}):")
        for i, lam in enumerate(final.lam.values):
            row = numbers[name]
            print(
                f"  lambda {lam:.2f}: Gaussian {row['gaussian_entropy'][i]:9.3f} nats, kNN {row['knn_entropy'][i]:9.3f} nats, "
                f"participation ratio {row['participation_ratio'][i]:.2f}, resolved dimension {row['resolved_dimension'][i]:.3g}"
            )
        print(f"  entropy at lambda = 1 falls by {-slope:.4g} nats/step; theory d x rate = {-predicted:.4g}")
    print(f"numbers: {write_numbers('entropy_collapse', numbers)}")


if __name__ == "__main__":
    main()
