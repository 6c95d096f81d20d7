"""Entropy collapse: how many degrees of freedom a node keeps as it binds to the shared context.

The paper's second claim: as a node's representation goes from *atomic* (independent of
the context) to *entangled* (a function of the context alone), its entropy goes to zero.
We make that measurable. Over an ensemble of S samples (run seeds, each with its own
independent initial configuration z), the engine evolves the context-driven states
x(t). A node at entanglement lambda in [0, 1] is the point a fraction lambda of the way
along the geodesic from its atomic state to its context-driven one,

    y(lambda, t) = Exp_z(lambda Log_z(x(t))),

so lambda = 0 is z itself and lambda = 1 is x(t). Its entropy is estimated from the S
samples of Log_a(y) in coordinates of the tangent space at the anchor a, by

* a Gaussian estimate, 1/2 log det(2 pi e Sigma), with two readings of "degrees of
  freedom": the participation ratio (tr Sigma)^2 / tr Sigma^2 (a shape: how many
  directions share the variance) and the resolved dimension sum s_k / (s_k + delta^2)
  over the eigenvalues s_k (how many directions still vary by more than delta);
* the Kozachenko-Leonenko k-nearest-neighbour estimator, which assumes no shape.

For the ``gradient`` rule near the anchor the linear theory predicts the collapse: once
the slowest mode of the grounded Laplacian dominates, every agent's spread shrinks by
rho per step in all d directions, so H(lambda=1, t) falls by d log(1/rho) per step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from hivemind.engine.manifolds import Manifold, get_manifold
from hivemind.engine.simulate import anchor_state, simulate
from hivemind.io.scenario import Scenario
from hivemind.theory import FIT_FLOOR, MAX_DENSE_AGENTS, hearers, predicted_rate

DEFAULT_LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_TIMES = 50  # recorded steps at which the entropies are estimated
AGENT_CHUNK = 512  # agents per batch of pairwise distances: bounds memory at S^2 * chunk


def entangle(manifold: Manifold, atomic: jax.Array, context: jax.Array, lam) -> jax.Array:
    """The point a fraction ``lam`` of the way along the geodesic from ``atomic`` to ``context``."""
    return manifold.exp(atomic, lam * manifold.log(atomic, context))


def tangent_basis(manifold: Manifold, point: jax.Array) -> jax.Array:
    """An orthonormal basis (d, D) of the tangent space at ``point`` in the manifold's metric.

    The ambient unit vectors, projected onto the tangent space, span it; the top d
    eigenvectors of their Gram matrix turn them into an orthonormal basis. This works for
    the Minkowski metric of the hyperboloid as well as for the Euclidean one.
    """
    eye = jnp.eye(manifold.ambient_dim, dtype=point.dtype)
    proj = manifold.proj(point, eye)  # (D, D), rows tangent at point
    gram = manifold.inner(point, proj[:, None, :], proj[None, :, :])
    w, u = jnp.linalg.eigh(gram)
    top = jnp.argsort(-w)[: manifold.dim]
    return (u[:, top] / jnp.sqrt(w[top])).T @ proj


def tangent_coordinates(manifold: Manifold, point: jax.Array, y: jax.Array, basis: jax.Array | None = None) -> jax.Array:
    """Coordinates (..., d) of Log_point(y) in an orthonormal basis of the tangent space at ``point``."""
    basis = tangent_basis(manifold, point) if basis is None else basis
    v = manifold.log(point, y)
    return manifold.inner(point, v[..., None, :], basis)


# --- Estimators over samples (..., S, d), in nats -------------------------------------


def _covariance(samples: np.ndarray) -> np.ndarray:
    c = samples - samples.mean(axis=-2, keepdims=True)
    return np.einsum("...si,...sj->...ij", c, c) / (samples.shape[-2] - 1)


def _eigenvalues(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.linalg.eigvalsh(_covariance(samples)), 0.0, None)


def _digamma_half(x: float) -> float:
    """psi(x) for x a positive multiple of 1/2, from psi(1) and psi(1/2) by recurrence."""
    n2 = round(2 * x)
    if n2 < 1 or abs(n2 - 2 * x) > 1e-12:
        raise ValueError(f"x must be a positive multiple of 1/2, got {x}")
    if n2 % 2 == 0:
        base, y = -np.euler_gamma, 1.0
    else:
        base, y = -np.euler_gamma - 2 * math.log(2), 0.5
    while y < x - 1e-12:
        base += 1 / y
        y += 1
    return base


def gaussian_entropy(samples: np.ndarray, unbiased: bool = True) -> np.ndarray:
    """1/2 log det(2 pi e Sigma) from the sample covariance; -inf where it is singular.

    log det of a sample covariance is biased low, by several nats when S is not much
    larger than d; ``unbiased`` removes the exact Wishart bias,
    E log det S = log det Sigma + d log(2/n) + sum_i psi((n - i + 1)/2) with n = S - 1
    (Ahmed & Gokhale 1989). Needs more samples than dimensions (S > d), or the
    covariance is singular by construction, whatever the data.
    """
    s, d = samples.shape[-2:]
    if s <= d:
        raise ValueError(f"a Gaussian entropy in {d} dimensions needs more than {d} samples, got {s}")
    lam = _eigenvalues(samples)
    with np.errstate(divide="ignore"):
        logdet = np.log(lam).sum(axis=-1)
    if unbiased:
        n = s - 1
        logdet = logdet - d * math.log(2 / n) - sum(_digamma_half((n - i + 1) / 2) for i in range(1, d + 1))
    return 0.5 * (d * math.log(2 * math.pi * math.e) + logdet)


def participation_ratio(samples: np.ndarray) -> np.ndarray:
    """(tr Sigma)^2 / tr(Sigma^2): between 1 (one direction) and d (isotropic); 0 with no variance."""
    lam = _eigenvalues(samples)
    tr, tr2 = lam.sum(axis=-1), (lam**2).sum(axis=-1)
    return np.where(tr2 > 0, tr**2 / np.where(tr2 > 0, tr2, 1.0), 0.0)


def resolved_dimension(samples: np.ndarray, resolution: float) -> np.ndarray:
    """sum_k s_k / (s_k + delta^2): the directions whose standard deviation exceeds ``resolution``.

    Near d for a spread much wider than delta in every direction, near 0 for one much
    narrower: degrees of freedom that go to zero as the node collapses.
    """
    lam = _eigenvalues(samples)
    return (lam / (lam + resolution**2)).sum(axis=-1)


def knn_entropy(samples: np.ndarray, k: int = 3) -> np.ndarray:
    """Kozachenko-Leonenko: psi(S) - psi(k) + log V_d + (d/S) sum_i log eps_i.

    eps_i is the Euclidean distance from sample i to its k-th nearest neighbour and V_d
    the volume of the unit d-ball (Kraskov, Stögbauer & Grassberger 2004, eq. 20). Where
    samples coincide, eps = 0 and the estimate is -inf: no spread at all.
    """
    s, d = samples.shape[-2:]
    if not 1 <= k < s:
        raise ValueError(f"k must be between 1 and the number of samples - 1 ({s - 1}), got {k}")
    batch = samples.reshape(-1, s, d)
    log_eps = np.empty(batch.shape[:2])
    for lo in range(0, batch.shape[0], AGENT_CHUNK):
        x = batch[lo : lo + AGENT_CHUNK]
        sq = (x**2).sum(axis=-1)
        d2 = sq[:, :, None] + sq[:, None, :] - 2 * np.einsum("bsi,bti->bst", x, x)
        d2 = np.clip(d2, 0.0, None)
        idx = np.arange(s)
        d2[:, idx, idx] = np.inf
        kth = np.partition(d2, k - 1, axis=-1)[..., k - 1]
        with np.errstate(divide="ignore"):
            log_eps[lo : lo + AGENT_CHUNK] = 0.5 * np.log(kth)
    log_volume = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    h = _digamma_half(s) - _digamma_half(k) + log_volume + d * log_eps.mean(axis=-1)
    return h.reshape(samples.shape[:-2])


def gaussian_entropy_exact(cov: np.ndarray) -> float:
    """The entropy of N(mu, cov), 1/2 log det(2 pi e cov): what the estimators should find."""
    d = cov.shape[-1]
    return 0.5 * (d * math.log(2 * math.pi * math.e) + np.linalg.slogdet(cov)[1])


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
