"""Predicted against measured convergence rates over a family of graphs, on R^4 and S^4.

For each graph (star, ring, scale-free, small-world, each with 100 agents) the step size
is 1 / lambda_max of the grounded Laplacian, a stable choice, and the run is long enough
for six decades of decay at the predicted rate. The measured rate is the tail fit of
log mean distance to the anchor (``hivemind.theory.measured_rate``); the prediction is
max |1 - eta lambda| over the spectrum. On R^n the theory is exact; on the sphere it is
the linearisation at the anchor. Writes figures/rates.png and figures/rates.json.

    .venv/bin/python analysis/rates.py
"""

from __future__ import annotations

import math

from _common import FIGURES, SCENARIOS, write_numbers
from matplotlib.figure import Figure

from hivemind import load_scenario, simulate
from hivemind.plot import CATEGORY_COLORS, house_style, save_figure
from hivemind.theory import FIT_FLOOR, grounded_spectrum, mean_distance_of_hearers, measured_rate, predicted_rate

GRAPHS = {
    # The anchor sits on a leaf of the star: the others hear it only through the hub.
    "star": ["graph.kind='star'", "graph.n=99", "graph.params={}", "anchor.node=1"],
    "ring": ["graph.kind='cycle'", "graph.n=100", "graph.params={}"],
    "scale-free": ["graph.kind='barabasi_albert'", "graph.n=100", "graph.params={m=2}"],
    "small-world": ["graph.kind='watts_strogatz'", "graph.n=100", "graph.params={k=4, p=0.2}"],
}
SPACES = {"R^4": ["manifold.kind='euclidean'"], "S^4": ["manifold.kind='sphere'", "init.spread=0.5"]}


def main() -> None:
    rows = []
    for space, space_set in SPACES.items():
        for graph, graph_set in GRAPHS.items():
            base = load_scenario(SCENARIOS / "rates.toml", graph_set + space_set)
            lam = grounded_spectrum(base.arrays, base.anchor_index)
            eta = 1.0 / float(lam.max())
            pred0 = predicted_rate(base.arrays, base.anchor_index, 1.0, eta)
            steps = int(min(200_000, max(500, math.log(1e6) / pred0.rate)))
            every = max(1, steps // 400)
            scenario = load_scenario(
                SCENARIOS / "rates.toml",
                [*graph_set, *space_set, f"dynamics.step_size={eta!r}", f"dynamics.steps={steps}", f"record.every={every}"],
            )
            ds = simulate(scenario)
            meas = measured_rate(ds.step.values, mean_distance_of_hearers(ds), FIT_FLOOR["float64"])
            rows.append(
                {
                    "space": space,
                    "graph": graph,
                    "lambda_min": pred0.lambda_min,
                    "lambda_max": pred0.lambda_max,
                    "step_size": eta,
                    "steps": steps,
                    "predicted_rate": pred0.rate,
                    "measured_rate": meas.rate,
                    "relative_error": abs(meas.rate / pred0.rate - 1),
                    "r2": meas.r2,
                }
            )
            r = rows[-1]
            print(
                f"{space} {graph:<12} eta {eta:.4f}  predicted {r['predicted_rate']:.5g}  measured {r['measured_rate']:.5g}  "
                f"error {r['relative_error']:.1e}  (R^2 {r['r2']:.6f}, {steps} steps)"
            )
    with house_style():
        fig = Figure(figsize=(5.5, 5), layout="constrained")
        ax = fig.subplots()
        markers = {"R^4": "o", "S^4": "s"}
        colors = dict(zip(GRAPHS, CATEGORY_COLORS, strict=False))
        for r in rows:
            ax.plot(
                r["predicted_rate"], r["measured_rate"], markers[r["space"]], color=colors[r["graph"]], ms=8, mfc="none", mew=2
            )
        lo = min(r["predicted_rate"] for r in rows) / 2
        hi = max(r["predicted_rate"] for r in rows) * 2
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1, label="measured = predicted")
        for g, c in colors.items():
            ax.plot([], [], "o", color=c, label=g)
        for s, m in markers.items():
            ax.plot([], [], m, color="0.3", mfc="none", label=s)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel=r"predicted rate $-\log\max|1-\eta\lambda_i|$",
            ylabel="measured rate (tail fit, per step)",
            title="grounded-Laplacian rates, 100 agents",
        )
        ax.legend(loc="upper left")
    save_figure(fig, FIGURES / "rates", ("png",))
    worst = max(rows, key=lambda r: r["relative_error"])
    print(f"largest relative error: {worst['relative_error']:.1e} ({worst['space']}, {worst['graph']})")
    print(f"numbers: {write_numbers('rates', {'rows': rows})}")


if __name__ == "__main__":
    main()
