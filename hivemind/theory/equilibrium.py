"""Where a run ends: the fixed point of the dynamics, on any manifold, against the run's endpoint.

With several anchors or stubborn agents the ``gradient`` rule does not collapse into an
anchor; it settles where every agent's drift vanishes. On R^n that point is one linear
solve (``linear.linear_equilibrium``); on S^n and H^n it is found here by a Riemannian
fixed-point iteration.
"""

from __future__ import annotations

import numpy as np

from hivemind.theory.linear import FIT_FLOOR, MAX_DENSE_AGENTS, grounded_spectrum, linear_equilibrium, measured_rate


def equilibrium(scenario, x0: np.ndarray, tol: float = 1e-12, max_iter: int = 200_000) -> tuple[np.ndarray, int, float]:
    """Where the ``gradient`` rule ends, on any manifold: (x*, iterations, largest |drift|).

    The fixed point of drift(x) = 0 (``energy.drift``: the neighbours' pull scaled by
    inertia, mixed with each agent's pull toward its own start by its stubbornness),
    found by the Riemannian fixed-point iteration x <- Exp_x(alpha drift(x)) in float64,
    from ``x0`` (N, D), which also gives the anchors' states and the prejudices.
    alpha = 1 / lambda_max of the grounded operator makes the iteration a contraction
    near the fixed point (on R^n it is Jacobi-like and converges to ``linear_equilibrium``);
    it is independent of the run's rule, step size and noise. Stops when the largest
    drift is below ``tol`` or after ``max_iter`` iterations.
    """
    import jax
    import jax.numpy as jnp

    from hivemind.engine import energy
    from hivemind.engine.manifolds import get_manifold
    from hivemind.engine.topology import Topology, build_topology

    theta = scenario.stubbornness
    couplings = [a.coupling for a in scenario.anchors]
    lam = grounded_spectrum(scenario.arrays, scenario.anchor_indices, couplings, theta if np.any(theta) else None)
    alpha = 1.0 / float(np.max(lam.real)) if lam.size else 1.0
    with jax.enable_x64(True):
        manifold = get_manifold(scenario.manifold.kind, scenario.manifold.dim)
        topo = build_topology(scenario.arrays, scenario.anchor_indices, couplings, np.float64, theta)
        topology = Topology(*(jnp.asarray(a) for a in topo))
        features = energy.Features(stubborn=bool(np.any(theta)))
        p = jnp.asarray(x0, jnp.float64)

        def body(carry):
            x, k, _ = carry
            v = energy.drift(manifold, x, topology, features, None, p)
            size = jnp.max(manifold.norm(x, v))
            return manifold.exp(x, alpha * v), k + 1, size

        def going(carry):
            _, k, size = carry
            return (size > tol) & (k < max_iter)

        x, k, size = jax.jit(lambda x: jax.lax.while_loop(going, body, (x, 0, jnp.inf)))(p)
        return np.asarray(x), int(k), float(size)


# Steps read one by one to measure the approach to the fixed point.
MAX_APPROACH_STEPS = 5000


def equilibrium_report(scenario, ds) -> dict | None:
    """The fixed point of seed 0's run against its endpoint, agent by agent; None where theory has none.

    On R^n the fixed point is the linear solve (``linear_equilibrium``); elsewhere the
    Riemannian fixed-point iteration (``equilibrium``). Bounded confidence switches edges
    on and off, so it has no fixed operator, and dense solves stop at ``MAX_DENSE_AGENTS``.
    """
    if scenario.dynamics.confidence is not None or scenario.agents.inertia == "active":
        return None
    if scenario.arrays.n_nodes > MAX_DENSE_AGENTS:
        return None
    import jax
    import jax.numpy as jnp

    from hivemind.engine.manifolds import get_manifold

    x0 = np.asarray(ds.state.isel(seed=0, step=0).values, np.float64)
    end = np.asarray(ds.state.isel(seed=0, step=-1).values, np.float64)
    theta = scenario.stubbornness
    if scenario.manifold.kind == "euclidean":
        couplings = [a.coupling for a in scenario.anchors]
        fixed = linear_equilibrium(scenario.arrays, scenario.anchor_indices, couplings, x0, theta if np.any(theta) else None)
        iterations, residual, method = 1, 0.0, "linear solve"
    else:
        fixed, iterations, residual = equilibrium(scenario, x0)
        method = "Riemannian fixed-point iteration"
    settled = np.isfinite(fixed).all(axis=1)
    with jax.enable_x64(True):
        manifold = get_manifold(scenario.manifold.kind, scenario.manifold.dim)
        err = np.asarray(manifold.dist(jnp.asarray(end[settled]), jnp.asarray(fixed[settled])))
        anchors = jnp.asarray(fixed[list(scenario.anchor_indices)])
        to_anchor = np.asarray(jnp.min(manifold.dist(jnp.asarray(fixed)[:, None], anchors[None]), axis=1))
        # How fast the run approaches the fixed point: the rate the grounded operator predicts.
        states = ds.state.isel(seed=0)
        approach = (
            np.asarray(
                [
                    np.mean(
                        np.asarray(
                            manifold.dist(
                                jnp.asarray(states.isel(step=k).values, jnp.float64)[settled], jnp.asarray(fixed[settled])
                            )
                        )
                    )
                    for k in range(ds.sizes["step"])
                ]
            )
            if ds.sizes["step"] <= MAX_APPROACH_STEPS
            else None
        )
    mobile = np.ones(len(fixed), dtype=bool)
    mobile[list(scenario.anchor_indices)] = False
    meas = None
    if approach is not None:
        meas = measured_rate(ds.step.values, approach, FIT_FLOOR.get(scenario.run.precision, 1e-4))
    return {
        "measured_rate_to_fixed_point": meas.to_dict() if meas else None,
        "method": method,
        "iterations": iterations,
        "residual": residual,
        "max_error": float(err.max()) if err.size else 0.0,
        "mean_error": float(err.mean()) if err.size else 0.0,
        "mean_distance_to_anchor": float(np.nanmean(to_anchor[mobile & settled])) if np.any(mobile & settled) else 0.0,
        "fixed_point": fixed,
    }
