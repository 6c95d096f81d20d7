"""The design objectives measured on a run's records: what ``hivemind run`` reports of a
scenario that ``hivemind design`` wrote (its ``[design]`` table), to check the design's value.

The definitions are those of ``hivemind.design.problem``: Musco et al.'s polarization and
disagreement and Gionis et al.'s mean opinion of the expressed opinions (the last record's
states on R^1), the mean distance to the nearest anchor, the dispersion, and the area under
the dispersion curve in steps (every step recorded).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hivemind.scenario.names import EQUILIBRIUM_OBJECTIVES as EQUILIBRIUM


def opinion_objective(name: str, z, src, dst, acting, neutral: float | None = None):
    """Musco et al.'s polarization P(z), disagreement D(z), their sum, or Gionis et al.'s mean opinion.

    P is the spread about the mean opinion (``neutral`` None: the paper's definition, with which
    P + D = s_bar^T (I + L)^-1 s_bar) or about a fixed neutral opinion (``neutral = 0``: the
    objective (s + x)^T (I + L)^-1 (s + x) of Musco et al.'s published OptimizeInnate.m);
    D sums a_ij (z_i - z_j)^2 over the ties ``src``-``dst`` with their acting weights. Written
    once for the design (traced, differentiated) and for a run's records (numpy arrays in).
    """
    import jax.numpy as jnp

    polarization = jnp.sum((z - (jnp.mean(z) if neutral is None else neutral)) ** 2)
    if name == "polarization":
        return polarization
    if name == "mean_opinion":
        return jnp.mean(z)
    disagreement = jnp.sum(acting * (z[src] - z[dst]) ** 2)
    return disagreement if name == "disagreement" else polarization + disagreement


def acting_weights(scenario) -> np.ndarray:
    """Each tie's weight times the coupling of the anchor it touches (as ``build_topology`` takes it)."""
    a = scenario.arrays
    kappa = np.ones(a.n_nodes)
    anchored = np.zeros(a.n_nodes, bool)
    for k, i in enumerate(scenario.anchor_indices):
        kappa[i], anchored[i] = scenario.anchors[k].coupling, True
    factor = np.where(anchored[a.src], kappa[a.src], np.where(anchored[a.dst], kappa[a.dst], 1.0))
    return a.weight * factor


def measured(name: str, scenario, ds: xr.Dataset, neutral: float | None = None) -> tuple[float | None, str]:
    """The objective ``name`` of run ``ds`` (mean over seeds), or None and why it cannot be measured."""
    if name in EQUILIBRIUM:
        if scenario.manifold.kind != "euclidean" or scenario.manifold.dim != 1:
            return None, "an opinion objective needs states on R^1"
        a = scenario.arrays
        w = acting_weights(scenario)
        last = np.asarray(ds.state.isel(step=-1, coord=0).values, np.float64)  # (seed, agent)
        value = np.mean([float(opinion_objective(name, z, a.src, a.dst, w, neutral)) for z in last])
        return float(value), "the last record's states"
    if name == "collapse":
        mobile = np.ones(ds.sizes["agent"], bool)
        mobile[list(scenario.anchor_indices)] = False
        d = np.asarray(ds.distance_to_anchor.isel(step=-1).values)[:, mobile]
        return float(np.mean(d.mean(axis=1))), "the last record's mean distance to the nearest anchor"
    if name == "diversity":
        return float(ds.dispersion.isel(step=-1).mean()), "the last record's dispersion"
    if name == "time_to_consensus":
        steps = np.asarray(ds.step.values)
        if steps.size < 2 or not np.array_equal(steps, np.arange(steps[-1] + 1)):
            return None, "the area under the dispersion curve needs every step recorded (record.every = 1)"
        disp = np.asarray(ds.dispersion.values, np.float64)  # (seed, step)
        return float(np.mean(disp[:, 1:].sum(axis=1) / disp[:, 0])), "the dispersion of every step"
    return None, f"unknown objective {name!r}"
