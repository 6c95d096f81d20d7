"""Two anchors: the population splits, where the theory says, and coupling moves the split.

With two anchors the gradient rule no longer collapses: every agent settles at the
fixed point of the same equations (on R^n the harmonic extension of the anchors'
states; on S^n and H^n the Riemannian fixed point, ``hivemind.theory.equilibrium``).
This script runs ``scenarios/competing_{sphere,hyperbolic}.toml`` with the second
anchor's coupling kappa from 1/4 to 8, and compares, for every run, the share of
agents nearest to each anchor and every agent's endpoint with the predicted fixed point.

Writes figures/competing_anchors.png and figures/competing_anchors.json.

    .venv/bin/python analysis/competing_anchors.py
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import FIGURES, SCENARIOS, write_numbers

from hivemind import load_scenario, simulate
from hivemind.engine.manifolds import get_manifold
from hivemind.theory import equilibrium

COUPLINGS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def with_coupling(scenario, kappa: float):
    anchors = (scenario.anchors[0], dataclasses.replace(scenario.anchors[1], coupling=kappa))
    return dataclasses.replace(scenario, anchors=anchors)


def split_coordinate(manifold, x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """d(x, a) / (d(x, a) + d(x, b)): 0 at the first anchor, 1 at the second."""
    da = np.asarray(manifold.dist(jnp.asarray(x), jnp.asarray(a)[None]))
    db = np.asarray(manifold.dist(jnp.asarray(x), jnp.asarray(b)[None]))
    return da / (da + db)


def main() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    numbers, curves = {}, {}
    fig, (ax_hist, ax_share, ax_time) = plt.subplots(1, 3, figsize=(15, 4.2))
    for space in ("sphere", "hyperbolic"):
        base = load_scenario(SCENARIOS / f"competing_{space}.toml")
        manifold = get_manifold(base.manifold.kind, base.manifold.dim)
        i_a, i_b = base.anchor_indices
        rows = []
        for kappa in COUPLINGS:
            s = with_coupling(base, kappa)
            ds = simulate(s)
            x0 = ds.state.isel(seed=0, step=0).values
            end = ds.state.isel(seed=0, step=-1).values
            fixed, iterations, residual = equilibrium(s, x0)
            final_distance = ds.distance_to_anchor.isel(seed=0, step=-1).values
            mobile = np.ones(len(end), dtype=bool)
            mobile[[i_a, i_b]] = False
            err = np.asarray(manifold.dist(jnp.asarray(end[mobile]), jnp.asarray(fixed[mobile])))
            t_run = split_coordinate(manifold, end[mobile], end[i_a], end[i_b])
            t_fix = split_coordinate(manifold, fixed[mobile], end[i_a], end[i_b])
            rows.append(
                {
                    "coupling_b": kappa,
                    "measured_share_b": float(ds.anchor_share.isel(seed=0, step=-1).values[1]),
                    "predicted_share_b": float(np.mean(t_fix > 0.5)),
                    "max_equilibrium_error": float(err.max()),
                    "mean_equilibrium_error": float(err.mean()),
                    "fixed_point_iterations": iterations,
                    "fixed_point_residual": residual,
                    "final_mean_distance_to_nearest_anchor": float(final_distance[mobile].mean()),
                    "final_clusters": int(ds.clusters.isel(seed=0, step=-1).item()),
                }
            )
            print(
                f"{space:<10} kappa_b {kappa:5.2f}: share nearest anchor b measured {rows[-1]['measured_share_b']:.3f}, "
                f"predicted {rows[-1]['predicted_share_b']:.3f}; endpoint vs fixed point max {err.max():.2g}"
            )
            if space == "sphere" and kappa in (0.5, 1.0, 2.0):
                ax_hist.hist(t_run, bins=30, range=(0, 1), histtype="step", lw=1.8, label=f"kappa_b = {kappa:g}")
            if kappa == 1.0:
                curves[space] = (ds.step.values, ds.distance_to_anchor.isel(seed=0).values[:, mobile].mean(1), rows[-1])
        numbers[space] = rows
        k = [r["coupling_b"] for r in rows]
        (line,) = ax_share.plot(k, [r["measured_share_b"] for r in rows], "o-", label=f"{space}: measured")
        predicted = [r["predicted_share_b"] for r in rows]
        ax_share.plot(k, predicted, "x", ms=10, color=line.get_color(), label=f"{space}: fixed point")
    ax_hist.set(xlabel="position between the anchors, d(x,a) / (d(x,a) + d(x,b))", ylabel="agents")
    ax_hist.set_title("S^15: where agents end")
    ax_hist.legend()
    ax_share.set(xscale="log", xlabel="coupling of anchor b (anchor a: 1)", ylabel="share of agents nearest to b", ylim=(0, 1))
    ax_share.set_xticks(COUPLINGS, [f"{k:g}" for k in COUPLINGS])
    ax_share.minorticks_off()
    ax_share.set_title("coupling moves the split")
    ax_share.legend(fontsize=8)
    for space, (steps, mean, row) in curves.items():
        (line,) = ax_time.plot(steps, mean, label=f"{space} (kappa_b = 1)")
        ax_time.axhline(row["final_mean_distance_to_nearest_anchor"], ls="--", color=line.get_color(), lw=0.8)
    ax_time.set(xlabel="step", ylabel="mean distance to the nearest anchor", title="no collapse: a floor, not zero")
    ax_time.legend()
    fig.tight_layout()
    fig.savefig(FIGURES / "competing_anchors.png", dpi=120)
    write_numbers("competing_anchors", numbers)
    print(f"wrote {FIGURES / 'competing_anchors.png'}")


if __name__ == "__main__":
    main()
