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


def table(doc: dict) -> str:
    """analysis/README.md's table at the last step (readme_blocks.py renders it; tests check it)."""
    s, h = doc["sphere"], doc["hyperbolic"]
    lines = [
        f"| lambda | S^{s['dim']} Gaussian H | S^{s['dim']} kNN H | S^{s['dim']} resolved dim "
        f"| H^{h['dim']} Gaussian H | H^{h['dim']} kNN H | H^{h['dim']} resolved dim |",
        "|---|---|---|---|---|---|---|",
    ]
    entropy = lambda v: f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}"  # noqa: E731
    dimension = lambda v: f"{v:.2g}" if v < 0.5 else f"{v:.0f}"  # noqa: E731  ~15 or ~1e-4, nothing between
    last = len(s["lambda"]) - 1
    for k, lam in enumerate(s["lambda"]):
        shown = [
            entropy(s["gaussian_entropy"][k]), entropy(s["knn_entropy"][k]), dimension(s["resolved_dimension"][k]),
            entropy(h["gaussian_entropy"][k]), entropy(h["knn_entropy"][k]), dimension(h["resolved_dimension"][k]),
        ]  # fmt: skip
        shown = [f"**{t}**" for t in shown] if k == last else shown  # the collapse
        lines.append(f"| {lam:g} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


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
