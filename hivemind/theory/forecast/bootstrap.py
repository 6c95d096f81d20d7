"""Intervals of a fit's parameters: moving blocks of rounds, refits, and the parametric bootstrap by Newton steps."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.engine.topology import Topology
from hivemind.theory.forecast.model import (
    COUPLINGS,
    Coefficients,
    ForecastFit,
    checked_data,
    descend,
    filter_forecasts,
    fit,
    free_mask,
    model_step,
    noises,
    params_of,
    prepare,
    sphere_of,
    theta_of,
    to_params,
)


def block_weights(rounds: int, train: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, R): how often each training transition was drawn in blocks of about sqrt(train)."""
    block = max(1, int(round(math.sqrt(train))))
    n_blocks = math.ceil(train / block)
    keys = jax.random.split(jax.random.key(seed), resamples)
    picks = np.asarray(jax.vmap(lambda k: jax.random.randint(k, (n_blocks,), 0, train - block + 1))(keys))
    w = np.zeros((resamples, rounds))
    for r, p in enumerate(picks):
        for s in p:
            w[r, s : s + block] += 1.0
    return w


METHODS = ("parametric", "blocks", "refit")


def bootstrap(
    y,
    anchor,
    topo: Topology,
    model: str,
    train: int,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.9,
    open_=None,
    src=None,
    dst=None,
    method: str = "parametric",
):
    """The fit and ``level`` intervals of its parameters. Returns ``(fit, {param: [lo, hi]})``.

    ``method``:

    - ``"parametric"``: ``resamples`` conversations simulated from the fit less its bias (its
      couplings, process and observation noise; the bias measured on ``BIAS_SHARE`` as many
      conversations simulated from the fit), from the observed first round, each re-estimated.
      The interval is the basic bootstrap's [p + s - q_hi, p + s - q_lo], s where the simulations
      started, which also takes out the estimator's bias (on the sphere, noise drifts agents
      apart, and a mean forecast reads part of that as a weaker pull). It assumes the model;
      the spread between seeds is the check that does not.
    - ``"blocks"``: a moving-block bootstrap over the training transitions (blocks of about
      sqrt(train) consecutive transitions, drawn with replacement; a transition's weight is how
      often it was drawn), percentile intervals. Resampling rounds, not agents, keeps the
      agents' dependence on each other whole. With ten transitions it has three blocks to draw
      from and is too narrow (see analysis/forecast_calibration.py).
    - ``"refit"``: the blocks, each fitted from the full fit's optimum by L-BFGS.

    Except for ``"refit"``, every resample's estimate is one Gauss-Newton step from the full fit
    (a k-step bootstrap with k = 1, Andrews 2002, Econometrica 70: 119-162), a few hundred times
    cheaper than a fit. The attractor's interval is ``attractor_angle``: the radius (rad) of the
    cone around the fitted point that holds ``level`` of the resampled points (``"blocks"`` and
    ``"refit"``; the parametric bootstrap holds the point). The copy model's rates are
    recounted on the blocks, whatever ``method``. Draws come from ``jax.random.key(seed)``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    y, rounds = checked_data(y, anchor, model, train)
    open_ = np.ones((rounds, y.shape[1]), bool) if open_ is None else np.asarray(open_, bool)
    best = fit(y, anchor, topo, model, train, open_=open_, src=src, dst=dst)
    basic = method == "parametric" and model != "copy"
    if basic:
        draws, start = _parametric_draws(y, anchor, topo, best, train, resamples, seed)
    else:
        weights = block_weights(rounds, train, resamples, seed)
        if model == "copy":
            draws = [fit(y, anchor, topo, model, train, w, open_, src, dst).params for w in weights]
        elif method == "refit":
            draws = _refit_draws(y, anchor, topo, best, weights, open_)
        else:
            draws = _one_step_draws(y, anchor, topo, best, weights, open_)
    q = [(1 - level) / 2, (1 + level) / 2]
    out = {}
    for k, v in best.params.items():
        if not isinstance(v, float):
            continue
        lo, hi = np.quantile([p[k] for p in draws], q)
        if basic:  # the spread of the estimates about where they were simulated from, about the fit
            lo, hi = max(v + start[k] - hi, 0.0), v + start[k] - lo
            hi = min(hi, 1.0) if k == "gain" else hi
        out[k] = [float(lo), float(hi)]
    if draws and "attractor_angle" in draws[0]:
        out["attractor_angle"] = [0.0, float(np.quantile([p["attractor_angle"] for p in draws], level))]
    return best, out


def _refit_draws(y, anchor, topo: Topology, best: ForecastFit, weights: np.ndarray, open_) -> list[dict]:
    d = y.shape[-1]
    free = free_mask(best.model, anchor)
    draws = []
    with jax.enable_x64(True):
        yj, a, tj = prepare(y, anchor, topo)
        fj, oj = jnp.asarray(free), jnp.asarray(open_)
        # Every resample starts from the full fit's optimum: a few L-BFGS steps move it to its own.
        start = jnp.asarray(theta_of(best, y))
        for w in weights:
            theta, mse = descend(fj, yj, a, tj, oj, jnp.asarray(w), start)
            draws.append(params_of(best.model, np.asarray(theta), float(mse), free, topo, d))
    if best.model == "attractor":
        z = np.asarray(best.params["attractor"])
        for p in draws:
            p["attractor_angle"] = float(np.arccos(np.clip(np.dot(p["attractor"], z), -1.0, 1.0)))
    return draws


JVP_CHUNK = 32  # Jacobian columns pushed forward at once: memory ~ 32 x (R, N, D) per intermediate


@jax.jit
def _residuals(bounded, topo: Topology, anchor, y, open_, z, basis, x):
    """Log_y(forecast) (R, N, D) at the natural parameters x[:6] (eta, kappa, theta, gamma, gain,
    eps) and the attractor's tangent coordinates at z, x[6:]. As a vector, not a distance: its
    squared length is the loss, and its Jacobian carries the curvature across the residual that
    a distance's would lose. Every model shares one compile: what is free is chosen outside."""
    manifold = sphere_of(y.shape[-1])
    u = manifold.exp(z, basis @ x[6:])
    params = Coefficients(x[:4], x[4], x[5], bounded, u)
    return manifold.log(y[1:], filter_forecasts(topo, anchor, params, y, open_))


@jax.jit
def _push(bounded, topo: Topology, anchor, y, open_, z, basis, x, tangents):
    """The residuals' derivative along each of ``tangents`` (k, P): (k, R, N, D)."""
    f = functools.partial(_residuals, bounded, topo, anchor, y, open_, z, basis)
    return jax.vmap(lambda e: jax.jvp(f, (x,), (e,))[1])(tangents)


def _natural_loss(bounded, topo: Topology, anchor, y, open_, z, basis, weights, x):
    r = _residuals(bounded, topo, anchor, y, open_, z, basis, x)
    return jnp.sum(jnp.mean(jnp.sum(r**2, -1), -1) * weights) / jnp.sum(weights)


_natural_value_and_grad = jax.jit(jax.value_and_grad(_natural_loss, argnums=8))
# The exact Hessian costs two gradients per parameter: beyond this many (the attractor's
# point), the Gauss-Newton curvature J^T J stands in for it.
EXACT_HESSIAN = 16


class _Newton(NamedTuple):
    """What one Gauss-Newton step from a fit needs: which natural parameters move, from where."""

    idx: tuple  # free entries of (eta, kappa, theta, gamma, gain, eps)
    bounded: bool
    nat: np.ndarray  # (6,) the fit's natural parameters
    z: np.ndarray  # the attractor (or any unit vector)
    basis: np.ndarray  # (D, D - 1) tangent basis at z when z moves, else (D, 0)
    lo: np.ndarray
    hi: np.ndarray

    @property
    def full(self) -> np.ndarray:
        """Every natural parameter and the attractor's tangent coordinates (0 at the fit)."""
        return np.concatenate([self.nat, np.zeros(self.basis.shape[1])])

    @property
    def free(self) -> list[int]:
        return [*self.idx, *(6 + j for j in range(self.basis.shape[1]))]

    @property
    def x0(self) -> np.ndarray:
        return self.full[self.free]

    def args(self, y, anchor, topo: Topology, open_) -> tuple:
        yj, a, tj = prepare(y, anchor, topo)
        bounded = jnp.asarray(1.0 if self.bounded else 0.0)
        return bounded, tj, a, yj, jnp.asarray(open_), jnp.asarray(self.z), jnp.asarray(self.basis)


def _newton(best: ForecastFit, anchor, d: int, move_attractor: bool = True) -> _Newton:
    p = best.params
    free = free_mask(best.model, anchor)
    bounded = "confidence" in p
    nat = np.array([p[c] for c in COUPLINGS] + [p["gain"], p.get("confidence", 1.0)])
    idx = tuple([i for i in range(4) if free[i]] + [4] + ([5] if bounded else []))
    z = np.asarray(p.get("attractor", np.eye(d)[0]), np.float64)
    moving = best.model == "attractor" and move_attractor
    basis = np.linalg.svd(z[None])[2][1:].T if moving else np.zeros((d, 0))
    lo, hi = np.zeros(len(idx)), np.full(len(idx), np.inf)
    lo[idx.index(4)], hi[idx.index(4)] = 1e-9, 1.0  # the gain
    if bounded:
        lo[idx.index(5)] = 1e-6
    return _Newton(idx, bounded, nat, z, basis, lo, hi)


def _jacobian(g: _Newton, y, anchor, topo: Topology, open_) -> tuple[np.ndarray, np.ndarray]:
    """The residuals (R, N D) at the fit and their Jacobian (k, R, N D) in its free parameters."""
    k = len(g.free)
    # Tangents padded to whole chunks, so that every model's Jacobian shares a compile.
    chunk = min(JVP_CHUNK, 8 * math.ceil(k / 8))
    tangents = np.zeros((chunk * math.ceil(k / chunk), len(g.full)))
    tangents[np.arange(k), g.free] = 1.0
    with jax.enable_x64(True):
        args = g.args(y, anchor, topo, open_)
        x = jnp.asarray(g.full)
        r = np.asarray(_residuals(*args, x)).reshape(y.shape[0] - 1, -1)
        jac = np.concatenate(
            [np.asarray(_push(*args, x, jnp.asarray(tangents[i : i + chunk]))) for i in range(0, len(tangents), chunk)]
        )
    return r, jac[:k].reshape(k, r.shape[0], -1)


def _per_transition(r: np.ndarray, jac: np.ndarray, n: int):
    """Each transition's loss (R,), gradient (R, k) and Gauss-Newton curvature (R, k, k)."""
    grad = 2.0 / n * np.einsum("rm,krm->rk", r, jac)
    hess = 2.0 / n * np.stack([jac[:, t] @ jac[:, t].T for t in range(r.shape[0])])
    return np.sum(r**2, axis=1) / n, grad, hess


def _step_draw(g: _Newton, w: np.ndarray, loss_t, grad_t, hess_t, topo: Topology, d: int, hessian=None) -> dict:
    """The parameters after one Newton step of the loss weighted by ``w``, clipped to their range:
    with the fit's exact ``hessian`` if given, else the weighted Gauss-Newton curvature."""
    w = w / w.sum()
    h = np.einsum("r,rkl->kl", w, hess_t) if hessian is None else hessian
    grad = w @ grad_t
    k, m = len(grad), len(g.idx)
    ridge = 1e-12 * max(np.trace(h) / k, 1e-300)
    step = -np.linalg.solve(h + ridge * np.eye(k), grad)
    x0 = g.x0
    step[:m] = np.clip(x0[:m] + step[:m], g.lo, g.hi) - x0[:m]
    mse = float(w @ loss_t + grad @ step + 0.5 * step @ h @ step)
    full = g.nat.copy()
    full[list(g.idx)] = x0[:m] + step[:m]
    draw = {c: float(v) for c, v in zip(COUPLINGS, full[:4], strict=True)}
    draw["noise"], draw["observation_noise"] = noises(float(full[4]), max(mse / (d - 1), 1e-300), full[:4], topo)
    draw["gain"] = float(full[4])
    if g.bounded:
        draw["confidence"] = float(full[5])
    if g.basis.shape[1]:
        draw["attractor_angle"] = float(np.linalg.norm(step[m:]))
    return draw


def _one_step_draws(y, anchor, topo: Topology, best: ForecastFit, weights: np.ndarray, open_) -> list[dict]:
    """Each block resample's parameters after one Gauss-Newton step of its weighted loss from ``best``.

    The step works in the natural parameters (couplings, gain, eps and, for the attractor,
    tangent coordinates at the fitted point), where a coupling fitted to 0 has a finite
    derivative (it has none in softplus coordinates). The step's gradient and curvature are
    sums over transitions, so one Jacobian serves every resample.
    """
    d = y.shape[-1]
    g = _newton(best, anchor, d)
    r, jac = _jacobian(g, y, anchor, topo, open_)
    terms = _per_transition(r, jac, y.shape[1])
    train = (np.asarray(weights).sum(0) > 0).astype(np.float64)
    hessian = _exact_hessian(g, y, anchor, topo, open_, train)
    return [_step_draw(g, w, *terms, topo, d, hessian) for w in weights]


def _exact_hessian(g: _Newton, y, anchor, topo: Topology, open_, weights) -> np.ndarray | None:
    """The loss's Hessian in the free natural parameters at the fit (None past EXACT_HESSIAN of
    them). Gauss-Newton's J^T J leaves out the residuals' own curvature, which at 0.8 rad per
    message is not small: it made the steps, and the intervals, about 30 % too short."""
    if len(g.free) > EXACT_HESSIAN:
        return None
    # Central differences of the exact gradient: as accurate as jax.hessian here (float64, a
    # smooth loss), and it reuses the gradient's compile instead of one that took 20 s.
    x, h = g.full, 1e-5
    cols = []
    with jax.enable_x64(True):
        args = g.args(y, anchor, topo, open_)
        w = jnp.asarray(weights, jnp.float64)
        for j in g.free:
            e = np.zeros_like(x)
            e[j] = h * max(1.0, abs(x[j]))
            up = np.asarray(_natural_value_and_grad(*args, w, jnp.asarray(x + e))[1])
            down = np.asarray(_natural_value_and_grad(*args, w, jnp.asarray(x - e))[1])
            cols.append((up - down)[g.free] / (2 * e[j]))
    hess = np.stack(cols, axis=1)
    return 0.5 * (hess + hess.T)


@functools.partial(jax.jit, static_argnums=(0,))
def _simulate(rounds: int, topo: Topology, anchor, p: Coefficients, sigma, tau, x0, key):
    """Observed rounds 0..``rounds`` of the model from hidden states x0: process noise sigma and
    observation noise tau, each a tangent Gaussian per dimension. The stubbornness target is the
    first observed round, as in the fit."""
    manifold = sphere_of(x0.shape[-1])

    def noisy(k, x, s):
        return manifold.exp(x, s * manifold.proj(x, jax.random.normal(k, x.shape, x.dtype)))

    k0, k1 = jax.random.split(key)
    first = noisy(k0, x0, tau)

    def body(x, k):
        ka, kb = jax.random.split(k)
        x = noisy(ka, model_step(manifold, topo, anchor, first, p, x), sigma)
        return x, noisy(kb, x, tau)

    _, ys = jax.lax.scan(body, x0, jax.random.split(k1, rounds))
    return jnp.concatenate([first[None], ys])


# The parametric bootstrap measures the estimator's bias at the fit, not at the truth. Where the
# bias moves with the parameters (the process noise's, 1.3 % of it, with the observation noise's
# own, -11 %), the basic interval is off by the difference: sigma's 90 % interval held the truth
# in 66 of 100 synthetic conversations. So a first batch of simulations (this share of the
# resamples) measures the bias, and the intervals' simulations start from the fit less that
# bias: one step of an iterated bootstrap (Hall 1992, The Bootstrap and Edgeworth Expansion).
BIAS_SHARE = 0.5


def _simulated_draws(y, anchor, topo: Topology, g: _Newton, hessian, params: dict, train: int, keys) -> list[dict]:
    """One Gauss-Newton step from the fit's parameters (``g``) on each conversation simulated from
    ``params`` (couplings, confidence, process and observation noise) with one of ``keys``."""
    rounds, n, d = y.shape[0] - 1, y.shape[1], y.shape[-1]
    w = (np.arange(rounds) < train).astype(np.float64)
    open_ = np.ones((rounds, n), bool)
    draws = []
    with jax.enable_x64(True):
        p = to_params(params, d)
        sigma, tau = params["noise"], params["observation_noise"]
        bounded, tj, a, _, oj, z, basis = g.args(y, anchor, topo, open_)
        x, wj, free = jnp.asarray(g.full), jnp.asarray(w), g.free
        for key in keys:
            sim = _simulate(rounds, tj, a, p, sigma, tau, jnp.asarray(y[0]), key)
            loss, grad = _natural_value_and_grad(bounded, tj, a, sim, oj, z, basis, wj, x)
            draws.append(_step_draw(g, np.ones(1), np.array([float(loss)]), np.asarray(grad)[free][None], None, topo, d, hessian))
    return draws


def _debiased(params: dict, draws: list[dict]) -> dict:
    """``params`` less the bias their ``draws`` show, each kept in its range."""
    out = dict(params)
    for k, v in params.items():
        if isinstance(v, float):
            out[k] = max(2 * v - float(np.mean([p[k] for p in draws])), 0.0)
    out["gain"] = min(out["gain"], 1.0)
    return out


def _parametric_draws(y, anchor, topo: Topology, best: ForecastFit, train: int, resamples: int, seed: int):
    """Estimates on ``resamples`` conversations simulated from ``best`` less its bias (measured on
    ``BIAS_SHARE`` as many more, simulated from ``best``), each one Gauss-Newton step from
    ``best``'s parameters, from the observed first round; and the parameters they were simulated
    from. The attractor, if any, stays where it was fitted."""
    y = np.asarray(y, np.float64)
    g = _newton(best, anchor, y.shape[-1], move_attractor=False)
    rounds = y.shape[0] - 1
    w = (np.arange(rounds) < train).astype(np.float64)
    hessian = _exact_hessian(g, y, anchor, topo, np.ones((rounds, y.shape[1]), bool), w)
    k_bias, k_draws = jax.random.split(jax.random.key(seed))
    bias_keys = jax.random.split(k_bias, max(1, round(BIAS_SHARE * resamples)))
    start = _debiased(best.params, _simulated_draws(y, anchor, topo, g, hessian, best.params, train, bias_keys))
    return _simulated_draws(y, anchor, topo, g, hessian, start, train, jax.random.split(k_draws, resamples)), start
