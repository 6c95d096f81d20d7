"""Bounded confidence: how many clusters survive as the confidence bound epsilon shrinks.

1. R^1, ``scenarios/hegselmann_krause.toml`` (200 agents, complete graph, uniform starts
   in [0, 1], synchronous Hegselmann–Krause): the number of final clusters against
   epsilon over 5 starts, beside the published behaviour: about 1/(2 epsilon) clusters,
   and consensus above a threshold near epsilon = 0.2 for large populations.
2. The same model on the sphere S^2 (uniform starts on the whole sphere, epsilon in
   radians): each agent moves to the Riemannian mean of itself and its neighbours
   within epsilon.

Writes figures/bounded_confidence.png and figures/bounded_confidence.json.

    .venv/bin/python analysis/bounded_confidence.py
"""

from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
from _common import FIGURES, HK_ON_SPHERE, SCENARIOS, write_numbers

from hivemind import load_scenario, simulate

EPSILONS = (0.03, 0.05, 0.07, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3)
SPHERE_EPSILONS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5)
SEEDS = (0, 1, 2, 3, 4)


def clusters_against_epsilon(overrides: list[str], epsilons, steps: int) -> tuple[list[dict], object]:
    base = load_scenario(SCENARIOS / "hegselmann_krause.toml", overrides + [f"dynamics.steps={steps}", f"record.every={steps}"])
    base = dataclasses.replace(
        base, init=dataclasses.replace(base.init, seed=None), run=dataclasses.replace(base.run, seeds=SEEDS)
    )
    rows = []
    for eps in epsilons:
        s = dataclasses.replace(base, dynamics=dataclasses.replace(base.dynamics, confidence=eps))
        ds = simulate(s)
        k = ds.clusters.isel(step=-1).values.astype(float)
        rows.append(
            {
                "epsilon": eps,
                "clusters_mean": float(k.mean()),
                "clusters_min": float(k.min()),
                "clusters_max": float(k.max()),
                "largest_share_mean": float(ds.largest_cluster_share.isel(step=-1).values.mean()),
            }
        )
    return rows, base


def main() -> None:
    numbers = {}
    line, _ = clusters_against_epsilon([], EPSILONS, 150)
    for r in line:
        span = f"{r['clusters_min']:g}-{r['clusters_max']:g}"
        print(f"R^1 epsilon {r['epsilon']:.2f}: {r['clusters_mean']:.1f} clusters ({span}); 1/(2 eps) = {0.5 / r['epsilon']:.1f}")
    numbers["line"] = line
    sphere, _ = clusters_against_epsilon(HK_ON_SPHERE, SPHERE_EPSILONS, 300)
    for r in sphere:
        print(f"S^2 epsilon {r['epsilon']:.2f}: {r['clusters_mean']:.1f} clusters ({r['clusters_min']:g}-{r['clusters_max']:g})")
    numbers["sphere"] = sphere

    traj = simulate(load_scenario(SCENARIOS / "hegselmann_krause.toml"))
    fig, (ax_traj, ax_line, ax_sphere) = plt.subplots(1, 3, figsize=(15, 4.2))
    x = traj.state.isel(seed=0, coord=0).values[:, 1:]
    ax_traj.plot(traj.step.values, x, lw=0.5, color="tab:blue", alpha=0.5)
    eps0 = float(traj.attrs["confidence"])
    n_final = int(traj.clusters.isel(seed=0, step=-1))
    ax_traj.set(xlabel="step", ylabel="opinion", title=f"HK on R^1, epsilon = {eps0:g}: {n_final} clusters")
    e = np.asarray([r["epsilon"] for r in line])
    ax_line.errorbar(
        e,
        [r["clusters_mean"] for r in line],
        yerr=[[r["clusters_mean"] - r["clusters_min"] for r in line], [r["clusters_max"] - r["clusters_mean"] for r in line]],
        fmt="o-",
        capsize=3,
        label="hivemind, 5 starts (range)",
    )
    fine = np.linspace(e.min(), e.max(), 100)
    ax_line.plot(fine, 1 / (2 * fine), "k--", lw=0.8, label="1 / (2 epsilon)")
    ax_line.axvline(0.2, color="gray", ls=":", label="consensus threshold ~0.2")
    ax_line.set(xlabel="epsilon", ylabel="clusters at the end", yscale="log", title="R^1: 200 agents, uniform in [0, 1]")
    ax_line.legend()
    es = [r["epsilon"] for r in sphere]
    ax_sphere.errorbar(
        es,
        [r["clusters_mean"] for r in sphere],
        yerr=[[r["clusters_mean"] - r["clusters_min"] for r in sphere], [r["clusters_max"] - r["clusters_mean"] for r in sphere]],
        fmt="o-",
        capsize=3,
        color="tab:green",
    )
    ax_sphere.set(xlabel="epsilon (radians)", ylabel="clusters at the end", yscale="log")
    ax_sphere.set_title("S^2: 200 agents, uniform on the sphere")
    fig.tight_layout()
    fig.savefig(FIGURES / "bounded_confidence.png", dpi=120)
    write_numbers("bounded_confidence", numbers)
    print(f"wrote {FIGURES / 'bounded_confidence.png'}")


if __name__ == "__main__":
    main()
