"""Where path independence fails: an island with no path to the anchor, and noise that never dies.

1. ``scenarios/island.toml``: six agents talk among themselves but cannot hear the
   anchor. The theory's endpoint does not exist for them; they reach a consensus of
   their own, and where it lies depends on the start, the noise and the order of the
   gossip: different rules and seeds end in different places.
2. ``scenarios/paths_sphere.toml`` with constant noise: the stochastic rule never
   settles; its endpoints scatter at the noise's stationary spread.

Writes figures/path_dependence_{island,constant_noise}.png and figures/path_dependence.json.

    .venv/bin/python analysis/path_dependence.py
"""

from __future__ import annotations

import numpy as np
from _common import FIGURES, SCENARIOS, write_numbers

from hivemind import load_scenario
from hivemind.experiments.paths import compare_paths, parse_rules
from hivemind.plot import paths_figure, save_figure


def main() -> None:
    numbers = {}
    island = load_scenario(SCENARIOS / "island.toml")
    report = compare_paths(island, parse_rules("gradient,stochastic,gossip"), seeds=range(4), init_seeds=range(2))
    save_figure(paths_figure(report), FIGURES / "path_dependence_island", ("png",))
    cut = np.flatnonzero(~report.reachable)
    others = np.setdiff1d(np.flatnonzero(report.reachable), [report.anchor])
    numbers["island"] = {
        "verdict": "agree" if report.agrees else "disagree",
        "disagreeing": [report.labels[i] for i in report.disagreeing],
        "island_spread_max": float(report.spread[cut].max()),
        "mainland_spread_max": float(report.spread[others].max()),
        "mainland_gap_max": float(report.gap[others].max()),
    }
    print(
        f"island: {numbers['island']['verdict']}; agents {numbers['island']['disagreeing']} have no path to the anchor; "
        f"their endpoints differ by up to {numbers['island']['island_spread_max']:.3g} rad, "
        f"the other {others.size} agents' by {numbers['island']['mainland_spread_max']:.2g}"
    )

    sphere = load_scenario(SCENARIOS / "paths_sphere.toml", ["dynamics.noise_schedule='constant'"])
    report = compare_paths(sphere, parse_rules("gradient,stochastic"), seeds=range(4))
    save_figure(paths_figure(report), FIGURES / "path_dependence_constant_noise", ("png",))
    rows = {r["rule"]: r for r in report.rule_rows()}
    numbers["constant_noise"] = {
        "verdict": "agree" if report.agrees else "disagree",
        "agents_disagreeing": int(report.disagreeing.size),
        "max_spread": float(np.nanmax(report.spread)),
        "stochastic_mean_final_distance": rows["stochastic"]["mean_final_distance"],
        "gradient_mean_final_distance": rows["gradient"]["mean_final_distance"],
        "tol": report.tol,
    }
    c = numbers["constant_noise"]
    print(
        f"constant noise: {c['verdict']}; {c['agents_disagreeing']} agents disagree; the stochastic rule ends a mean "
        f"{c['stochastic_mean_final_distance']:.3g} from the anchor (gradient {c['gradient_mean_final_distance']:.2g})"
    )
    print(f"numbers: {write_numbers('path_dependence', numbers)}")


if __name__ == "__main__":
    main()
