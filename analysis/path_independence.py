"""Claim 1, path independence: gradient, stochastic, gossip and Adam end in the same place.

Runs ``scenarios/paths_sphere.toml`` (S^15) and ``scenarios/paths_hyperbolic.toml`` (H^2)
under four rules, four dynamics seeds and two initial configurations each, and compares
every agent's endpoints. Writes figures/path_independence_{sphere,hyperbolic}.png and
the numbers in figures/path_independence.json.

    .venv/bin/python analysis/path_independence.py
"""

from __future__ import annotations

from _common import FIGURES, SCENARIOS, write_numbers

from hivemind import load_scenario
from hivemind.experiments.paths import compare_paths, parse_rules
from hivemind.plot import paths_figure, save_figure

CASES = {
    # Adam's step is coordinate-wise normalised, so it gets its own, smaller step size.
    "sphere": ("paths_sphere.toml", "gradient,stochastic,gossip,adam:0.005"),
    "hyperbolic": ("paths_hyperbolic.toml", "gradient,stochastic,gossip,adam:0.02"),
}


def main() -> None:
    numbers = {}
    for name, (file, rules) in CASES.items():
        scenario = load_scenario(SCENARIOS / file)
        report = compare_paths(scenario, parse_rules(rules), seeds=range(4), init_seeds=range(2))
        save_figure(paths_figure(report), FIGURES / f"path_independence_{name}", ("png",))
        data = report.to_dict(max_named=5)
        numbers[name] = {k: data[k] for k in ("verdict", "tol", "max_spread", "max_gap", "agents_disagreeing", "rules")}
        print(f"{name}: {data['verdict']} (tol {data['tol']:.3g}); {data['agents_disagreeing']} agents disagree")
        for row in data["rules"]:
            print(
                f"  {row['rule']:<12} mean final distance {row['mean_final_distance']:.3g}, max {row['max_final_distance']:.3g}"
            )
    print(f"numbers: {write_numbers('path_independence', numbers)}")


if __name__ == "__main__":
    main()
