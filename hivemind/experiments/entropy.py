"""The entropy-collapse experiment: an ensemble of runs, each node measured at every entanglement.

The estimators and the geometry are in ``hivemind.theory.entropy``; this module runs the
engine over an ensemble of seeds and applies them (see that module's docstring for the model).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from hivemind.engine.manifolds import get_manifold
from hivemind.runner.simulate import anchor_state, simulate
from hivemind.scenario import Scenario
from hivemind.theory.entropy import (
    DEFAULT_LAMBDAS,
    MAX_TIMES,
    entangle,
    gaussian_entropy,
    knn_entropy,
    participation_ratio,
    resolved_dimension,
    tangent_basis,
    tangent_coordinates,
)
from hivemind.theory.linear import FIT_FLOOR, MAX_DENSE_AGENTS, hearers, predicted_rate

# --- The experiment ---------------------------------------------------------------------


def ensemble_scenario(scenario: Scenario, samples: int, max_times: int = MAX_TIMES) -> Scenario:
    """``scenario`` with ``samples`` seeds, independent starts, and at most ~``max_times`` records."""
    dyn = scenario.dynamics
    every = max(scenario.record.every, math.ceil(dyn.steps / max_times))
    return dataclasses.replace(
        scenario,
        run=dataclasses.replace(scenario.run, seeds=tuple(range(samples))),
        init=dataclasses.replace(scenario.init, seed=None),
        record=dataclasses.replace(scenario.record, every=every),
    )


def entropy_collapse(
    scenario: Scenario,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    samples: int = 64,
    k: int = 3,
    resolution: float = 1e-3,
) -> xr.Dataset:
    """Entropy and degrees of freedom per agent, entanglement lambda and recorded step.

    Returns a Dataset over (lam, step, agent) with ``gaussian_entropy``, ``knn_entropy``
    (nats), ``participation_ratio`` and ``resolved_dimension``, and the run's
    ``distance_to_anchor`` averaged over samples. Agents that cannot hear the anchor are
    kept (their entropy does not collapse) and flagged in ``reachable``.
    """
    d = scenario.manifold.dim
    if samples <= d + 1:
        raise ValueError(f"samples must exceed dim + 1 = {d + 1} for a full-rank covariance, got {samples}")
    ens = ensemble_scenario(scenario, samples)
    ds = simulate(ens)
    manifold = get_manifold(scenario.manifold.kind, d)
    anchor = scenario.anchor_index
    with jax.enable_x64(True):
        a = jnp.asarray(anchor_state(ens, manifold, jnp.dtype(scenario.run.precision)), jnp.float64)
        a = manifold.projx(a)
        basis = tangent_basis(manifold, a)
        states = jnp.asarray(ds.state.values, jnp.float64)  # (S, T, N, D)
        atomic = states[:, 0]
        shape = (len(lambdas), states.shape[1], states.shape[2])
        out = {name: np.empty(shape) for name in ("gaussian_entropy", "knn_entropy", "participation_ratio", "resolved_dimension")}
        coords_of = jax.jit(lambda z, x, lam: tangent_coordinates(manifold, a, entangle(manifold, z, x, lam), basis))
        for i, lam in enumerate(lambdas):
            for t in range(states.shape[1]):
                c = np.asarray(coords_of(atomic, states[:, t], lam))  # (S, N, d)
                c = np.swapaxes(c, 0, 1)  # (N, S, d)
                out["gaussian_entropy"][i, t] = gaussian_entropy(c)
                out["knn_entropy"][i, t] = knn_entropy(c, k)
                out["participation_ratio"][i, t] = participation_ratio(c)
                out["resolved_dimension"][i, t] = resolved_dimension(c, resolution)
    for v in out.values():
        v[:, :, anchor] = np.nan  # the anchor never moves: it has no entropy to estimate
    dims = ("lam", "step", "agent")
    units = {"gaussian_entropy": "nats", "knn_entropy": "nats"}
    result = xr.Dataset(
        {name: (dims, v, {"units": units[name]} if name in units else {}) for name, v in out.items()},
        coords={"lam": np.asarray(lambdas, float), "step": ds.step.values, "agent": ds.agent.values, "node": ds.node},
    )
    result["distance_to_anchor"] = ds.distance_to_anchor.mean("seed")
    result["reachable"] = ds.reachable
    result.attrs.update(
        {
            "scenario": scenario.name,
            "manifold": scenario.manifold.kind,
            "dim": d,
            "samples": samples,
            "k": k,
            "resolution": resolution,
            "anchor": anchor,
            "rule": scenario.dynamics.rule,
            "step_size": scenario.dynamics.step_size,
            "precision": scenario.run.precision,
        }
    )
    return result


def summary_table(result: xr.Dataset) -> xr.Dataset:
    """Each quantity's mean over the agents that hear the anchor, per (lam, step)."""
    mask = xr.DataArray(hearers(result), dims="agent")
    names = ["gaussian_entropy", "knn_entropy", "participation_ratio", "resolved_dimension"]
    return result[names].where(mask).mean("agent")


def predicted_collapse_slope(scenario: Scenario) -> float | None:
    """d x the grounded-Laplacian rate, negated (nats per step), or None where the theory gives none.

    The theory covers a stable ``gradient`` rule on graphs small enough for a dense spectrum.
    """
    if scenario.dynamics.rule != "gradient" or scenario.arrays.n_nodes > MAX_DENSE_AGENTS:
        return None
    dyn = scenario.dynamics
    pred = predicted_rate(scenario.arrays, scenario.anchor_indices, [a.coupling for a in scenario.anchors], dyn.step_size)
    return -scenario.manifold.dim * pred.rate if pred.stable else None


def collapse_slope(result: xr.Dataset, lam: float = 1.0, floor: float | None = None) -> float | None:
    """Measured slope (nats per step) of the mean Gaussian entropy at ``lam`` over the tail of the run.

    Fitted over the second half of the records whose mean distance to the anchor is
    above the precision floor, where the linear theory holds and rounding does not.
    """
    floor = FIT_FLOOR.get(result.attrs["precision"], 1e-4) if floor is None else floor
    table = summary_table(result)
    h = table.gaussian_entropy.sel(lam=lam).values
    dist = result.distance_to_anchor.values[:, hearers(result)].mean(axis=1)
    ok = np.flatnonzero((dist > floor) & np.isfinite(h))
    if ok.size < 8:
        return None
    idx = ok[ok.size // 2 :]
    slope, _ = np.polyfit(result.step.values[idx].astype(float), h[idx], 1)
    return float(slope)
