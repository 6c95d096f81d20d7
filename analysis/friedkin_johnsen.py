"""Stubborn agents (Friedkin–Johnsen): hivemind against NDlib on R^1, then the same model on the sphere.

1. On R^1 with degree inertia and step size 1, hivemind's update is NDlib's FJModel
   update, x_i <- (1 - theta_i) mean_j x_j + theta_i x_i(0). Both run 100 steps on the same
   networkx graph, opinions and theta (the anchor has theta = 1 on NDlib's side); the
   largest difference is printed. The fixed point x* = (I - (I - Theta) W)^-1 Theta x(0)
   is checked against a long run.
2. On S^2 and in float64, the same agents with one anchor: as the stubbornness theta
   grows, the population stops collapsing; the mean distance to the anchor at the end
   is predicted by the Riemannian fixed point (``hivemind.theory.equilibrium``).

Writes figures/friedkin_johnsen.png and figures/friedkin_johnsen.json.

    .venv/bin/python analysis/friedkin_johnsen.py
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from _common import FIGURES, write_numbers

from hivemind import parse_scenario, simulate
from hivemind.theory import equilibrium, linear_equilibrium

THETAS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)


def ndlib_fj(graph, x0, theta, iterations):
    from ndlib.models import ModelConfig
    from ndlib.models.opinions import FJModel

    model = FJModel(graph)
    config = ModelConfig.Configuration()
    for node, t in theta.items():
        config.add_node_configuration("stubbornness", node, t)
    model.set_initial_status(config)
    model.status, model.initial_status = dict(x0), dict(x0)
    model.iteration_bunch(iterations + 1, node_status=False)  # the first iteration only reports the start
    return np.asarray([model.status[i] for i in range(graph.number_of_nodes())])


def line_scenario(graph, x0, theta, steps) -> str:
    edges = ", ".join(f"[{u}, {v}]" for u, v in graph.edges)
    return f"""
[manifold]
kind = "euclidean"
dim = 1
[graph]
kind = "edges"
n = {graph.number_of_nodes()}
edges = [{edges}]
[anchor]
node = 0
state = "init"
[init]
kind = "explicit"
states = [{", ".join(f"[{float(v)!r}]" for v in x0)}]
[dynamics]
step_size = 1.0
steps = {steps}
[record]
every = 1
[agents]
inertia = "degree"
stubbornness = [{", ".join(repr(float(t)) for t in theta)}]
[run]
precision = "float64"
"""


SPHERE = """
[manifold]
kind = "sphere"
dim = 2
[graph]
kind = "barabasi_albert"
n = 200
params = {{ m = 3 }}
[anchor]
node = 0
state = [0.0, 0.0, 1.0]
[init]
kind = "random"
seed = 0
[dynamics]
step_size = 0.8
steps = 1500
[record]
every = 10
[agents]
inertia = "degree"
stubbornness = {theta}
[run]
precision = "float64"
"""


def main() -> None:
    numbers = {}
    rng = np.random.default_rng(0)
    graph = nx.barabasi_albert_graph(100, 2, seed=1)
    n = graph.number_of_nodes()
    x0 = rng.uniform(-1, 1, n)
    theta = rng.uniform(0, 1, n)
    theta[0] = 0.0
    ours = simulate(parse_scenario(line_scenario(graph, x0, theta, 100))).state.isel(seed=0, coord=0).values
    theirs = ndlib_fj(graph, dict(enumerate(x0)), {i: (1.0 if i == 0 else t) for i, t in enumerate(theta)}, 100)
    diff = float(np.max(np.abs(ours[-1] - theirs)))
    s = parse_scenario(line_scenario(graph, x0, theta, 1))
    fixed = linear_equilibrium(s.arrays, s.anchor_indices, 1.0, x0[:, None], s.stubbornness)[:, 0]
    numbers["ndlib"] = {
        "agents": n,
        "steps": 100,
        "max_abs_difference": diff,
        "max_distance_to_fixed_point_after_100_steps": float(np.max(np.abs(ours[-1] - fixed))),
    }
    print(f"R^1, {n} agents, 100 steps: largest |hivemind - NDlib FJModel| = {diff:.2g}")

    rows = []
    for t in THETAS:
        s = parse_scenario(SPHERE.format(theta=t))
        ds = simulate(s)
        mobile = ds.is_anchor.values == 0
        fixed_s, iterations, residual = equilibrium(s, ds.state.isel(seed=0, step=0).values)
        end = ds.state.isel(seed=0, step=-1).values
        err = float(np.max(np.arccos(np.clip(np.sum(end * fixed_s, axis=1), -1, 1))[mobile]))
        anchor = fixed_s[0]
        predicted = float(np.mean(np.arccos(np.clip(fixed_s[mobile] @ anchor, -1, 1))))
        rows.append(
            {
                "theta": t,
                "initial_mean_distance": float(ds.distance_to_anchor.isel(seed=0, step=0).values[mobile].mean()),
                "measured_final_mean_distance": float(ds.distance_to_anchor.isel(seed=0, step=-1).values[mobile].mean()),
                "predicted_final_mean_distance": predicted,
                "max_equilibrium_error": err,
                "fixed_point_iterations": iterations,
            }
        )
        measured = rows[-1]["measured_final_mean_distance"]
        print(
            f"S^2 theta {t:4.2f}: mean final distance to the anchor {measured:.4g} "
            f"(fixed point {predicted:.4g}, max error {err:.2g})"
        )
    numbers["sphere"] = rows

    fig, (ax_nd, ax_sphere) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax_nd.plot(theirs, ours[-1], "o", ms=4, mfc="none")
    lo, hi = min(theirs.min(), ours[-1].min()), max(theirs.max(), ours[-1].max())
    ax_nd.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax_nd.set(xlabel="NDlib FJModel, after 100 steps", ylabel="hivemind (R^1, degree inertia, step 1)")
    ax_nd.set_title(f"R^1, {n} agents: largest difference {diff:.1e}")
    th = [r["theta"] for r in rows]
    ax_sphere.plot(th, [r["measured_final_mean_distance"] for r in rows], "o-", label="run, final step")
    ax_sphere.plot(th, [r["predicted_final_mean_distance"] for r in rows], "x", ms=10, label="Riemannian fixed point")
    ax_sphere.axhline(rows[0]["initial_mean_distance"], color="gray", ls=":", label="start")
    ax_sphere.set(xlabel="stubbornness theta (every agent)", ylabel="mean distance to the anchor (rad)", xscale="symlog")
    ax_sphere.set_xscale("symlog", linthresh=0.02)
    ax_sphere.set_title("S^2: stubbornness stops the collapse")
    ax_sphere.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "friedkin_johnsen.png", dpi=120)
    write_numbers("friedkin_johnsen", numbers)
    print(f"wrote {FIGURES / 'friedkin_johnsen.png'}")


if __name__ == "__main__":
    main()
