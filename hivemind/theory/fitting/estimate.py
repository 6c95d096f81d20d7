"""Fitting a model's parameters by its one-round-ahead squared error (the prediction-error
method), with intervals from the variation between discussions.

The loss is the weighted mean over transitions of the squared distance between each
forecast and what was observed; a transition's weight is 1 where it is fitted and 0 where it
is held out, so every split of a dataset (folds of discussions, early rounds) shares one
compiled loss. Starting points come from the fitted transitions only: nothing held out
enters a fit. Under Gaussian innovations of variance s per dimension this is the likelihood's
maximum, s = MSE / dims, and the information criteria follow.

Intervals: the cluster-robust sandwich H^-1 (sum_c g_c g_c^T) H^-1 over discussions c (the
discussion is the unit that varies; with fewer than ``MIN_CLUSTERS`` discussions, the
rounds are), in the natural parameters, for every scalar parameter and for points of R^d
with at most ``MAX_POINT_COORDS`` numbers; directions on the sphere are reported without one.
"""

from __future__ import annotations

import functools
import math
import weakref
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.theory.fitting import params as P
from hivemind.theory.fitting.minimize import lbfgs
from hivemind.theory.fitting.models import Model
from hivemind.theory.fitting.panel import Arrays, Panel
from hivemind.theory.fitting.step import Gram, Pulls, forecasts, gram, gram_squared_errors, observed_pulls, squared_errors

GRADIENT_TOLERANCE = 1e-10
MAX_ITERATIONS = 500
# Every coupling starts small: a little of each pull.
START_COUPLING = 0.05
START_DECAY = 0.1  # per round: a timescale of 10 rounds
MIN_CLUSTERS = 10
MAX_POINT_COORDS = 32
# Curvature below this share of the largest (in the Hessian's diagonal) is no curvature.
FLAT = 1e-9


def z_of(level: float) -> float:
    """The standard normal's quantile for two-sided intervals at ``level`` (1.645 at 0.9)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


class Layout(NamedTuple):
    """Where each free parameter sits in the optimiser's flat vector: derived from the table,
    never typed."""

    model: Model
    space: str
    dims: int
    groups: int
    kinds: int
    names: tuple[str, ...]
    sizes: tuple[int, ...]

    def unpack(self, theta: jax.Array) -> dict:
        out, at = {}, 0
        for name, n in zip(self.names, self.sizes, strict=True):
            out[name] = P.natural(name, theta[at : at + n], self.space, bool(self.model.by), self.dims)
            at += n
        return out

    def pack(self, values: dict) -> np.ndarray:
        return np.concatenate([P.unconstrained(name, values[name], self.space) for name in self.names])


def layout(model: Model, panel: Panel) -> Layout:
    names = model.free(panel.has_anchor, panel.space)
    groups, kinds = max(len(panel.groups), 1), max(len(panel.kinds), 1)
    dims = panel.shape[2]
    sizes = tuple(P.size(n, dims, groups, bool(model.by), kinds) for n in names)
    return Layout(model, panel.space, dims, groups, kinds, names, sizes)


def one_step_errors(space: str, model: Model, p: dict, a: Arrays, g: Pulls | Gram):
    """Squared errors (T - 1, N) of the one-round-ahead forecasts: from the inner products when
    ``g`` is a ``Gram``, else from the forecasts themselves."""
    if isinstance(g, Gram):
        return gram_squared_errors(model, p, a, g)
    return squared_errors(space, forecasts(space, model, p, a, g), a.y[1:])


def _loss(lay: Layout, theta, a: Arrays, g: Pulls | Gram, weights):
    sq = one_step_errors(lay.space, lay.model, lay.unpack(theta), a, g)
    return jnp.sum(sq * weights) / jnp.sum(weights)


# Up to this many parameters the gradient is taken in forward mode, all directions in one
# vmapped pass: on the sphere in 384 dimensions reverse mode cost five forward passes (its
# backward through Exp and Log is a string of unfused elementwise kernels), forward mode
# about one and a half for two parameters.
FORWARD_MODE = 8


def _forward_value_and_grad(lay: Layout, theta, a: Arrays, g: Pulls, weights):
    f = functools.partial(_loss, lay)
    basis = jnp.eye(theta.shape[0], dtype=theta.dtype)
    values, grads = jax.vmap(lambda e: jax.jvp(lambda th: f(th, a, g, weights), (theta,), (e,)))(basis)
    return values[0], grads


@functools.lru_cache(maxsize=64)
def _value_and_grad(lay: Layout):
    if sum(lay.sizes) <= FORWARD_MODE:
        return jax.jit(functools.partial(_forward_value_and_grad, lay))
    return jax.jit(jax.value_and_grad(functools.partial(_loss, lay)))


_ARRAYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _arrays(panel: Panel) -> Arrays:
    """The panel's arrays on the device, copied once per panel (float64: call under ``jax.enable_x64``)."""
    if panel not in _ARRAYS:
        _ARRAYS[panel] = Arrays(*(jnp.asarray(v) for v in panel.arrays))
    return _ARRAYS[panel]


_PULLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.partial(jax.jit, static_argnums=(0,))
def _observed_pulls(space, a):
    return observed_pulls(space, a)


def _pulls(panel: Panel) -> Pulls:
    """The panel's observed Logs, computed once per panel (float64: call under ``jax.enable_x64``)."""
    if panel not in _PULLS:
        _PULLS[panel] = _observed_pulls(panel.space, _arrays(panel))
    return _PULLS[panel]


_GRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _constants(panel: Panel, model: Model) -> Pulls | Gram:
    """What a one-step loss of ``model`` reads besides its parameters: the inner products on the
    sphere (every model but bounded confidence), else the Logs."""
    if panel.space != "sphere" or model.confidence or model.base in ("groups", "edges"):
        return _pulls(panel)
    if panel not in _GRAMS:
        _GRAMS[panel] = jax.jit(gram)(_arrays(panel), _pulls(panel))
    return _GRAMS[panel]


def mean_point(space: str, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The mean of ``y`` (T, N, D) over ``rows`` (T, N) (the direction of the mean on the sphere)."""
    z = (y * rows[..., None]).sum((0, 1)) / max(rows.sum(), 1.0)
    if space == "sphere":
        norm = np.linalg.norm(z)
        z = z / norm if norm > 1e-12 else np.eye(y.shape[-1])[0]
    return z


def fitted_rows(weights: np.ndarray) -> np.ndarray:
    """The (round, agent) values that the transitions with ``weights`` > 0 read: their origins and targets."""
    on = weights > 0
    rows = np.zeros((on.shape[0] + 1, on.shape[1]))
    rows[:-1] += on
    rows[1:] += on
    return (rows > 0).astype(np.float64)


def start(lay: Layout, panel: Panel, weights: np.ndarray) -> dict:
    """Starting values from the fitted transitions alone."""
    y = panel.arrays.y
    rows = fitted_rows(weights)
    values = {}
    for name in lay.names:
        if name == "coupling_decay":
            values[name] = START_DECAY
        elif name == "confidence":
            # Everyone within confidence: twice the largest distance from the fitted values' mean.
            z = mean_point(panel.space, y, rows)
            if panel.space == "sphere":
                values[name] = math.pi
            else:
                spread = np.sqrt(np.max(np.sum((y - z) ** 2, -1) * rows))
                values[name] = 2.0 * max(float(spread), 1e-6)
        elif name in ("attractor", "attractor_drift"):
            scale = START_COUPLING if name == "attractor_drift" else 1.0
            if lay.model.by:
                values[name] = scale * np.stack(
                    [mean_point(panel.space, y, rows * (panel.arrays.group == g)[None, :]) for g in range(lay.groups)]
                )
            else:
                values[name] = scale * mean_point(panel.space, y, rows)
        elif name == "group_coupling":
            values[name] = np.full((lay.groups, lay.groups), START_COUPLING)
        elif name == "edge_coupling":
            values[name] = np.full(lay.kinds, START_COUPLING)
        else:
            values[name] = START_COUPLING
    return values


class Uncertainty(NamedTuple):
    """What the sandwich says of a fit: intervals at the asked level, the standard errors of the
    natural parameters (None where a parameter is not identified or not varied), and the unit
    the intervals are clustered by."""

    intervals: dict
    bse: dict
    clustered_by: str


class Estimate(NamedTuple):
    params: dict  # natural values (numpy), the model's free parameters
    mse: float  # the weighted one-step loss at the fit
    n_fitted: float  # transitions fitted (agent-rounds)


# In R^d with few parameters the residuals and their Jacobian are small enough to hand to a
# trust-region Gauss-Newton solver (scipy's least_squares), which converges in a handful of
# steps where L-BFGS takes dozens: 3-5x faster per fit on scalar opinions, the same optimum.
GAUSS_NEWTON_ENTRIES = 20_000_000  # residuals x parameters


def _gauss_newton_fits(lay: Layout, panel: Panel) -> bool:
    t, n, d = panel.shape
    k = sum(lay.sizes)
    return lay.space == "euclidean" and k <= FORWARD_MODE and (t - 1) * n * d * k <= GAUSS_NEWTON_ENTRIES


def _residuals(lay: Layout, theta, a: Arrays, g: Pulls, weights):
    """sqrt(w / sum w) (forecast - observed), flattened: its squared norm is the loss."""
    f = forecasts(lay.space, lay.model, lay.unpack(theta), a, g)
    scale = jnp.sqrt(weights / jnp.sum(weights))[..., None]
    return (scale * (f - a.y[1:])).reshape(-1)


@functools.lru_cache(maxsize=64)
def _residuals_and_jacobian(lay: Layout):
    r = functools.partial(_residuals, lay)
    return jax.jit(r), jax.jit(jax.jacfwd(r))


def _gauss_newton(lay: Layout, theta: np.ndarray, a: Arrays, g: Pulls, w) -> np.ndarray:
    import scipy.optimize

    r, jac = _residuals_and_jacobian(lay)
    res = scipy.optimize.least_squares(
        lambda th: np.asarray(r(jnp.asarray(th), a, g, w)),
        theta,
        jac=lambda th: np.asarray(jac(jnp.asarray(th), a, g, w)),
        method="trf",
        ftol=1e-15,
        xtol=1e-15,
        gtol=GRADIENT_TOLERANCE,
        max_nfev=MAX_ITERATIONS,
    )
    return res.x


def fit(model: Model, panel: Panel, weights: np.ndarray) -> Estimate:
    """``model``'s parameters minimising the one-step loss over the transitions with ``weights`` (T - 1, N)."""
    lay = layout(model, panel)
    weights = np.asarray(weights, np.float64)
    if weights.sum() <= 0:
        raise ValueError("no transition to fit")
    init = start(lay, panel, weights)
    with jax.enable_x64(True):
        a = _arrays(panel)
        w = jnp.asarray(weights)
        g = _constants(panel, model)
        vg = _value_and_grad(lay)
        theta = lay.pack(init)
        if _gauss_newton_fits(lay, panel):
            theta = _gauss_newton(lay, theta, a, g, w)
        else:
            theta = lbfgs(lambda th: vg(jnp.asarray(th), a, g, w), theta, MAX_ITERATIONS, GRADIENT_TOLERANCE)
        mse = float(vg(jnp.asarray(theta), a, g, w)[0])
        natural = {k: np.asarray(v) for k, v in lay.unpack(jnp.asarray(theta)).items()}
    return Estimate(natural, mse, float(weights.sum()))


def predict(model: Model, panel: Panel, params: dict) -> np.ndarray:
    """The one-round-ahead forecasts (T - 1, N, D) with natural ``params``."""
    with jax.enable_x64(True):
        p = {k: jnp.asarray(v) for k, v in params.items()}
        return np.asarray(_predict(panel.space, model, p, _arrays(panel), _pulls(panel)))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _predict(space, model, p, a, g):
    return forecasts(space, model, p, a, g)


def errors(space: str, forecast: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Squared distances (T - 1, N) between forecasts and observations."""
    with jax.enable_x64(True):
        return np.asarray(squared_errors(space, jnp.asarray(forecast), jnp.asarray(observed)))


def information(mse: float, n_fitted: float, dof: int, k: int) -> dict:
    """Gaussian log-likelihood of the fitted transitions, AIC and BIC, with ``dof`` dimensions per transition."""
    s = max(mse / dof, 1e-300)
    n = n_fitted * dof
    ll = -0.5 * n * (math.log(2 * math.pi * s) + 1.0)
    return {"log_likelihood": ll, "aic": 2 * k - 2 * ll, "bic": k * math.log(max(n, 1.0)) - 2 * ll}


def count(lay: Layout) -> int:
    """Free numbers: a direction on the sphere has one fewer than its coordinates."""
    k = sum(lay.sizes)
    if "attractor" in lay.names:  # on the sphere: a direction
        k -= lay.groups if lay.model.by else 1
    return k


def _per_cluster(space, model, varied, shapes, k, held, a, g, w, idx, phi):
    """Each cluster's sum of weighted squared errors (k,) at the natural values ``phi`` of ``varied``."""
    p, at = dict(held), 0
    for n, shape in zip(varied, shapes, strict=True):
        m = int(np.prod(shape))
        p[n] = phi[at : at + m].reshape(shape)
        at += m
    sq = one_step_errors(space, model, p, a, g)
    return jax.ops.segment_sum((sq * w).reshape(-1), idx.reshape(-1), k)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _cluster_gradients(space, model, varied, shapes, k, held, a, g, w, idx, phi):
    """Each cluster's gradient (k, P): forward mode, as P is small and the clusters many."""
    return jax.jacfwd(functools.partial(_per_cluster, space, model, varied, shapes, k, held, a, g, w, idx))(phi)


def intervals(model: Model, panel: Panel, est: Estimate, weights: np.ndarray, level: float = 0.9) -> Uncertainty:
    """Intervals at ``level`` of the natural parameters (cluster-robust sandwich), and what they
    are clustered by. A direction on the sphere, or a point of more than ``MAX_POINT_COORDS``
    numbers, is held at its fit and gets none."""
    lay = layout(model, panel)
    varied = tuple(
        n
        for n in lay.names
        if P.TABLE[n].constraint != "point" or (panel.space == "euclidean" and np.size(est.params[n]) <= MAX_POINT_COORDS)
    )
    shapes = tuple(tuple(np.shape(est.params[n])) for n in varied)
    phi0 = np.concatenate([np.ravel(est.params[n]) for n in varied])
    w = np.asarray(weights, np.float64)
    used = np.unique(panel.conversation[w.sum(0) > 0])
    by = "discussions" if used.size >= MIN_CLUSTERS else "rounds"
    if by == "discussions":
        idx, k = np.broadcast_to(np.searchsorted(used, panel.conversation)[None, :], w.shape), int(used.size)
    else:
        idx, k = np.broadcast_to(np.arange(w.shape[0])[:, None], w.shape), int(w.shape[0])
    idx = np.where(w > 0, idx, 0)
    if k < 2 or phi0.size == 0:
        return Uncertainty({}, {}, by)
    with jax.enable_x64(True):
        held = {n: jnp.asarray(est.params[n]) for n in lay.names if n not in varied}
        g = _constants(panel, model)
        args = (panel.space, model, varied, shapes, k, held, _arrays(panel), g, jnp.asarray(w), jnp.asarray(idx))
        g = np.asarray(_cluster_gradients(*args, jnp.asarray(phi0)))  # (clusters, P)
        # The Hessian by central differences of the total gradient: the same compiled program.
        cols = []
        for j in range(phi0.size):
            e = np.zeros_like(phi0)
            e[j] = 1e-5 * max(1.0, abs(phi0[j]))
            up = np.asarray(_cluster_gradients(*args, jnp.asarray(phi0 + e))).sum(0)
            down = np.asarray(_cluster_gradients(*args, jnp.asarray(phi0 - e))).sum(0)
            cols.append((up - down) / (2 * e[j]))
    h = 0.5 * (np.stack(cols, axis=1) + np.stack(cols, axis=1).T)
    meat = g.T @ g * k / (k - 1)
    # A direction the loss does not curve along is not identified (a decay so fast that only
    # the first round has a coupling): its parameters get no interval, rather than one of
    # zero width from a pseudo-inverse.
    scale = np.sqrt(np.maximum(np.abs(np.diag(h)), 1e-300))
    flat = np.abs(np.diag(h)) <= FLAT * max(float(np.max(np.abs(np.diag(h)))), 1e-300)
    hinv = np.linalg.pinv(h / np.outer(scale, scale), rcond=FLAT) / np.outer(scale, scale)
    cov = hinv @ meat @ hinv
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    se[flat] = np.nan
    out, at, where, bse = {}, 0, {}, {}
    z = z_of(level)
    for n, shape in zip(varied, shapes, strict=True):
        m = int(np.prod(shape))
        lo, hi = phi0[at : at + m] - z * se[at : at + m], phi0[at : at + m] + z * se[at : at + m]
        if P.TABLE[n].constraint == "positive":
            lo = np.where(np.isnan(lo), lo, np.maximum(lo, 0.0))
        bse[n] = None if np.any(np.isnan(se[at : at + m])) else (se[at : at + m].reshape(shape) if shape else float(se[at]))
        if np.any(np.isnan(lo)):
            out[n] = None
        else:
            out[n] = [lo.reshape(shape).tolist(), hi.reshape(shape).tolist()] if shape else [float(lo[0]), float(hi[0])]
        where[n] = np.arange(at, at + m)
        at += m
    if "attractor_drift" in where and "attractor_coupling" in where and out.get("attractor_coupling") is not None:
        out["attractor"] = _attractor_interval(est.params, cov, where, z)
    return Uncertainty(out, bse, by)


def _attractor_interval(params: dict, cov: np.ndarray, where: dict, z90: float) -> list | None:
    """The attractor z = b / gamma's interval by the delta method, from the drift b and the
    coupling gamma; None where gamma's own interval reaches 0 (the attractor may be at infinity)."""
    gamma, b = float(params["attractor_coupling"]), np.ravel(params["attractor_drift"])
    ig, ib = where["attractor_coupling"][0], where["attractor_drift"]
    if gamma - z90 * math.sqrt(max(cov[ig, ig], 0.0)) <= 0:
        return None
    z = b / gamma
    var = cov[ib, ib] / gamma**2 + b**2 * cov[ig, ig] / gamma**4 - 2 * b * cov[ib, ig] / gamma**3
    se = np.sqrt(np.maximum(var, 0.0))
    shape = np.shape(params["attractor_drift"])
    return [(z - z90 * se).reshape(shape).tolist(), (z + z90 * se).reshape(shape).tolist()]
