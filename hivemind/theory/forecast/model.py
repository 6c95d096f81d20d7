"""The forecast models: their parameters, their one-round step, the filter, the fit by the one-step loss, and forecasts."""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.engine.manifolds import get_manifold
from hivemind.engine.topology import Topology
from hivemind.theory.forecast.baselines import geodesic_distance
from hivemind.theory.forecast.decoder import copy_forecast, copy_rates, everyone_edges
from hivemind.theory.minimize import lbfgs

MODELS = ("copy", "anchor", "peer", "fj", "attractor", "confidence")
COUPLINGS = ("peer_coupling", "anchor_coupling", "stubbornness", "attractor_coupling")
# What each fitted model frees: the four couplings in the order of COUPLINGS, then the confidence eps.
FREE = {
    "anchor": (0, 1, 0, 0, 0),
    "peer": (1, 1, 0, 0, 0),
    "fj": (1, 1, 1, 0, 0),
    "attractor": (1, 1, 1, 1, 0),
    "confidence": (1, 1, 0, 0, 1),
}
BASELINES = ("persistence", "neighbours", "centroid", "anchor")
# softplus(-3) = 0.05: a small pull of every kind to start from; sigmoid(2) = 0.88: a little
# observation noise; softplus(3) = 3.05 rad: everyone within confidence (the sphere's diameter is pi).
START = (-3.0, 2.0, 3.0)
# exp(-(d / eps)^CONFIDENCE_POWER): flat inside eps, falling within about eps / 4 of it, as
# Hegselmann-Krause's step but with a gradient.
CONFIDENCE_POWER = 4
GRADIENT_TOLERANCE = 1e-9
MAX_ITERATIONS = 300


class ForecastFit(NamedTuple):
    model: str
    params: dict  # couplings, noise (sigma), observation_noise (tau), gain (k), and confidence / attractor
    n_params: int
    train_mse: float  # one-step, rad^2
    log_likelihood: float  # Gaussian innovations, training transitions
    aic: float


class Coefficients(NamedTuple):
    couplings: jax.Array  # (4,) in the order of COUPLINGS
    gain: jax.Array  # k in (0, 1]
    eps: jax.Array  # confidence (rad)
    bounded: jax.Array  # 1.0 where the confidence weight applies
    u: jax.Array  # the attractor, unnormalised


def sphere_of(d: int):
    return get_manifold("sphere", d - 1)


def _unpack(free, theta) -> Coefficients:
    return Coefficients(
        free[:4] * jax.nn.softplus(theta[:4]), jax.nn.sigmoid(theta[4]), jax.nn.softplus(theta[5]), free[4], theta[6:]
    )


def model_step(manifold, topo: Topology, anchor, first, p: Coefficients, x):
    eta, kappa, stub, gamma = p.couplings[0], p.couplings[1], p.couplings[2], p.couplings[3]
    logs = manifold.log(x[topo.receivers], x[topo.senders])
    # Squared distances, not distances: smooth where two agents wrote the same text.
    reach = jnp.exp(-((jnp.sum(logs**2, -1) / p.eps**2) ** (CONFIDENCE_POWER // 2)))
    w = topo.weights.astype(x.dtype) * jnp.where(p.bounded > 0, reach, 1.0)
    # A dense (agents, messages) matmul rather than a scatter: under jax.vmap (the bootstrap)
    # XLA's CPU scatter runs element by element (see dynamics_fit.peer_pull).
    v = eta * (jax.nn.one_hot(topo.receivers, x.shape[0], dtype=x.dtype).T * w) @ logs
    v = v + kappa * manifold.log(x, jnp.broadcast_to(anchor, x.shape))
    v = v + stub * manifold.log(x, first)
    v = v + gamma * manifold.log(x, jnp.broadcast_to(p.u / jnp.linalg.norm(p.u), x.shape))
    return manifold.exp(x, v)


def filtered(step, gain, ys, open_):
    """The filter's forecast of y[t + 1] from y[0..t], every t: (R, N, D), for a model's one-round
    ``step(manifold, x)``. The model steps the filtered states, and the forecast moves a fraction
    ``gain`` toward what was observed. ``open_`` (R, N) is False where a deterministic decoder's
    prompt did not change: that agent repeats y[t]."""
    manifold = sphere_of(ys.shape[-1])

    def body(m, inputs):
        now, after, o = inputs
        f = jnp.where(o[:, None], step(manifold, m), now)
        return manifold.exp(f, gain * manifold.log(f, after)), f

    return jax.lax.scan(body, ys[0], (ys[:-1], ys[1:], open_))[1]


def filter_forecasts(topo: Topology, anchor, p: Coefficients, ys, open_):
    """``filtered`` with the step of ``p``'s model."""
    return filtered(lambda manifold, x: model_step(manifold, topo, anchor, ys[0], p, x), p.gain, ys, open_)


@jax.jit
def _ahead(h, topo: Topology, anchor, p: Coefficients, ys, open_):
    """The forecasts from every observed origin t = 0..R-1, ``h`` rounds ahead: (R, N, D). ``h``
    is traced (a while loop) and every origin computed, so that all lead times and origin sets
    share one compile."""
    manifold = sphere_of(ys.shape[-1])
    first = filter_forecasts(topo, anchor, p, ys, open_)
    step = jax.vmap(lambda x: model_step(manifold, topo, anchor, ys[0], p, x))
    return jax.lax.fori_loop(0, h - 1, lambda _, x: step(x), first)


def _loss(free, y, anchor, topo: Topology, open_, weights, theta):
    manifold = sphere_of(y.shape[-1])
    f = filter_forecasts(topo, anchor, _unpack(free, theta), y, open_)
    return jnp.sum(jnp.mean(manifold.dist(f, y[1:]) ** 2, axis=1) * weights) / jnp.sum(weights)


_loss_value_and_grad = jax.jit(jax.value_and_grad(_loss, argnums=6))


def descend(free, y, anchor, topo: Topology, open_, weights, theta):
    """Parameters minimising the weighted one-step loss over the transitions y[t] -> y[t + 1]
    (``weights`` per transition: 1 for the training ones, the bootstrap's counts, 0 held out),
    and that loss. Arrays in, arrays out, under ``jax.enable_x64``."""
    step = functools.partial(_loss_value_and_grad, free, y, anchor, topo, open_, weights)
    theta = lbfgs(lambda t: step(jnp.asarray(t)), theta, MAX_ITERATIONS, GRADIENT_TOLERANCE)
    return theta, step(jnp.asarray(theta))[0]


def _start(y: np.ndarray, weights=None) -> np.ndarray:
    # The attractor starts at the population's mean over the rounds the fit reads (those of the
    # transitions with weight): where it spends its time, and nothing held out.
    rounds = y.shape[0] - 1
    w = np.ones(rounds) if weights is None else np.asarray(weights, np.float64)
    read = np.zeros(rounds + 1, bool)
    read[:-1] |= w > 0
    read[1:] |= w > 0
    u = y[read].reshape(-1, y.shape[-1]).mean(0)
    u = u / np.linalg.norm(u) if np.linalg.norm(u) > 1e-12 else np.eye(y.shape[-1])[0]
    return np.concatenate([np.full(4, START[0]), START[1:], u])


def prepare(y, anchor, topo):
    y = jnp.asarray(y, jnp.float64)
    # Without an anchor kappa is held at 0, but a zero vector's Log has a NaN derivative, and
    # 0 x NaN is NaN: any point of the sphere stands in.
    a = jnp.eye(y.shape[-1])[0] if anchor is None else jnp.asarray(anchor, jnp.float64)
    return y, a, Topology(*(jnp.asarray(t) for t in topo))


def free_mask(model: str, anchor) -> np.ndarray:
    free = np.asarray(FREE[model], np.float64)
    if anchor is None:
        free = free * np.array([1.0, 0.0, 1.0, 1.0, 1.0])  # no anchor, no anchor coupling
    return free


def checked_data(y, anchor, model: str, train: int) -> tuple[np.ndarray, int]:
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if anchor is None and model == "anchor":
        raise ValueError("the anchor model needs an anchor")
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    if not 1 <= train <= rounds:
        raise ValueError(f"train must be in [1, {rounds}], got {train}")
    return y, rounds


def noises(gain: float, s: float, couplings: np.ndarray, topo: Topology) -> tuple[float, float]:
    """(sigma, tau) per tangent dimension from the gain k and the innovations' variance S.

    The steady state of the filter linearised around consensus, one coordinate of one agent:
    the prior variance P- = k S and tau^2 = S - P- (from k = P- / S); the posterior P = (1 - k) P-
    and P- = rho^2 P + sigma^2, where rho^2 = (1 - c)^2 + eta^2 mean_i sum_j w_ij^2 is how much
    of the agent's own and its neighbours' independent errors one step carries (c: the sum of
    the couplings; the anchor and the attractor carry none).
    """
    eta, c = float(couplings[0]), float(np.sum(couplings))
    recv, w = np.asarray(topo.receivers), np.asarray(topo.weights, np.float64)
    n = int(recv.max()) + 1 if recv.size else 1
    spread = float(np.mean(np.bincount(recv, weights=w**2, minlength=n))) if recv.size else 0.0
    rho2 = (1.0 - c) ** 2 + eta**2 * spread
    sigma2 = gain * s * (1.0 - rho2 * (1.0 - gain))
    return math.sqrt(max(sigma2, 0.0)), math.sqrt(max((1.0 - gain) * s, 0.0))


def params_of(model: str, theta: np.ndarray, mse: float, free: np.ndarray, topo: Topology, d: int) -> dict:
    with jax.enable_x64(True):
        p = _unpack(jnp.asarray(free), jnp.asarray(theta))
        couplings, gain, eps, u = (np.asarray(v) for v in (p.couplings, p.gain, p.eps, p.u))
    params = {name: float(c) for name, c in zip(COUPLINGS, couplings, strict=True)}
    s = max(mse / (d - 1), 1e-300)  # per tangent dimension of the sphere
    params["noise"], params["observation_noise"] = noises(float(gain), s, couplings, topo)
    params["gain"] = float(gain)
    if free[4]:
        params["confidence"] = float(eps)
    if model == "attractor":
        params["attractor"] = (u / np.linalg.norm(u)).tolist()
    return params


def _likelihood(mse: float, n: float, d: int, k: int) -> tuple[float, float]:
    s = max(mse / (d - 1), 1e-300)
    log_lik = -0.5 * n * (d - 1) * (math.log(2 * math.pi * s) + 1.0)
    return log_lik, 2 * k - 2 * log_lik


def fit(
    y: np.ndarray,
    anchor: np.ndarray | None,
    topo: Topology,
    model: str,
    train: int,
    weights=None,
    open_: np.ndarray | None = None,
    src=None,
    dst=None,
) -> ForecastFit:
    """``model`` fitted to the one-step transitions of rounds 0..``train`` of ``y`` (R + 1, N, D).

    ``weights`` (R,) weighs each transition t -> t + 1 (default: 1 for t < train, else 0);
    ``open_`` (R, N) is the deterministic decoder's ``gate`` (default: everyone open). The copy
    model counts on the graph ``src`` -> ``dst`` (default: everyone hears everyone).
    """
    y, rounds = checked_data(y, anchor, model, train)
    n, d = y.shape[1], y.shape[-1]
    w = (np.arange(rounds) < train).astype(np.float64) if weights is None else np.asarray(weights, np.float64)
    open_ = np.ones((rounds, n), bool) if open_ is None else np.asarray(open_, bool)
    if model == "copy":
        src, dst = everyone_edges(n) if src is None else (np.asarray(src), np.asarray(dst))
        params = copy_rates(y, src, dst, w)
        pred = copy_forecast(y, src, dst, params, np.arange(rounds), open_)
        sq = geodesic_distance(pred, y[1:]) ** 2
        mse = float(np.sum(sq.mean(1) * w) / np.sum(w))
        params["noise"] = math.sqrt(mse / (d - 1))
        k = 3  # q_repeat, q_copy, and the noise
        return ForecastFit(model, params, k, mse, *_likelihood(mse, float(np.sum(w) * n), d, k))
    free = free_mask(model, anchor)
    with jax.enable_x64(True):
        yj, a, tj = prepare(y, anchor, topo)
        theta, mse = descend(jnp.asarray(free), yj, a, tj, jnp.asarray(open_), jnp.asarray(w), jnp.asarray(_start(y, w)))
        theta, mse = np.asarray(theta), float(mse)
    params = params_of(model, theta, mse, free, topo, d)
    k = int(free.sum()) + 2 + (d - 1 if model == "attractor" else 0)  # + sigma and tau
    return ForecastFit(model, params, k, mse, *_likelihood(mse, float(np.sum(w) * n), d, k))


def _softplus_inverse(x: float) -> float:
    return x + math.log(-math.expm1(-x))


def theta_of(f: ForecastFit, y: np.ndarray) -> np.ndarray:
    """The unconstrained vector of ``f``'s parameters (a coupling fitted to 0 starts from START)."""
    p = f.params
    raw = [_softplus_inverse(p[c]) if p[c] > 1e-12 else START[0] for c in COUPLINGS]
    gain = min(max(p["gain"], 1e-9), 1 - 1e-9)
    raw += [math.log(gain / (1 - gain)), _softplus_inverse(p["confidence"]) if "confidence" in p else START[2]]
    u = np.asarray(p["attractor"]) if "attractor" in p else _start(y)[6:]
    return np.concatenate([raw, u])


def to_params(p: dict, d: int) -> Coefficients:
    return Coefficients(
        jnp.asarray([p[c] for c in COUPLINGS]),
        jnp.asarray(p["gain"]),
        jnp.asarray(p.get("confidence", 1.0)),
        jnp.asarray(1.0 if "confidence" in p else 0.0),
        jnp.asarray(p.get("attractor", np.eye(d)[0])),
    )


def predict(
    y: np.ndarray,
    anchor: np.ndarray | None,
    topo: Topology,
    f: ForecastFit,
    origins,
    h: int = 1,
    open_: np.ndarray | None = None,
    src=None,
    dst=None,
) -> np.ndarray:
    """The forecast of y[t + h] from rounds 0..t, t in ``origins``: (len, N, D). The model runs
    deterministically after its first step (the copy model: its first step only)."""
    y = np.asarray(y, np.float64)
    rounds, n, d = y.shape[0] - 1, y.shape[1], y.shape[-1]
    open_ = np.ones((rounds, n), bool) if open_ is None else np.asarray(open_, bool)
    origins = np.asarray(origins)
    if f.model == "copy":
        src, dst = everyone_edges(n) if src is None else (np.asarray(src), np.asarray(dst))
        return copy_forecast(y, src, dst, f.params, origins, open_)
    with jax.enable_x64(True):
        yj, a, tj = prepare(y, anchor, topo)
        out = _ahead(h, tj, a, to_params(f.params, d), yj, jnp.asarray(open_))
        return np.asarray(out)[origins]
