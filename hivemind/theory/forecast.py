"""Models of observed trajectories on the sphere, fitted and scored as forecasts, one round ahead.

Observed: unit vectors y[t, i] of every agent i at rounds t = 0..R (the embeddings of a
conversation, or any run), optionally an anchor a that never moves, and the graph the
agents talked on. Every continuous model is one geodesic step of the engine's form,

    x_i <- Exp_{x_i}( eta / m_i sum_j w_ij Log_{x_i}(x_j) + kappa Log_{x_i}(a)
                      + theta Log_{x_i}(y[0, i]) + gamma Log_{x_i}(z) )  (+ process noise sigma),

observed through observation noise tau: y[t, i] = Exp_{x[t, i]}(tau xi), a message's
idiosyncratic part that does not accumulate. The models (``MODELS``):

- ``anchor`` (kappa), ``peer`` (eta, kappa), ``fj`` (plus Friedkin-Johnsen stubbornness theta
  toward each agent's own first message), ``attractor`` (plus a pull gamma toward a free point
  z of the sphere: where the population goes when nobody pulls, the model's own prior), nested;
- ``confidence``: ``peer`` with a smooth bounded-confidence weight w_ij = exp(-(d_ij / eps)^4)
  on each message, eps fitted (w = 1 in the others): does an agent listen only to near views?
- ``copy``: a discrete baseline counted, not fitted: an agent repeats its own last message with
  probability q_repeat, a neighbour's with q_copy, else writes something new; its forecast is
  the normalised q_repeat-weighted mean of its own state and its neighbours'.

Without an anchor, kappa is 0.

Fitting is by the one-step loss (the prediction-error method). The forecast of round t + 1
comes from a filter over the observed rounds 0..t: the model steps the filtered states m_t,
and m_{t+1} = Exp_f(k Log_f(y[t + 1])) moves the forecast f a fraction k (the steady-state
Kalman gain) toward what was observed. k = 1 is "the observation is the state" (tau = 0);
a small k averages the idiosyncratic part away. Under Gaussian innovations of variance S per
tangent dimension this is the exact likelihood of the linear state-space model in its steady
state, so the couplings and k minimise the mean squared geodesic error of the forecasts, S
is its mean square per dimension, and sigma and tau follow from the steady state of the
linearised filter (``_noises``). z is fitted through an unnormalised vector u, z = u / |u|:
the gradient in u is the Riemannian gradient at z (projected on the tangent space), scaled
by 1 / |u|. Couplings stay positive through softplus, k in (0, 1) through a sigmoid.

A decoder that answers the same prompt with the same text (greedy decoding) is detected
(``deterministic``: every agent whose own and in-neighbours' messages did not change repeats
its message in the training rounds) and then every model forecasts those agents exactly
(``gate``): only agents whose prompt changed move.

Scores (``score``): one round ahead from every observed round of the held-out window, per
agent, as MSE in rad^2 and as skill 1 - MSE / MSE_baseline against four baselines measured
the same way: persistence (x = y[t]), copy-the-neighbours (the normalised mean of the
agent's in-neighbours), the population centroid, and the anchor. By lead time h, the model
runs h rounds from every observed origin and is scored against persistence, for the states
and for the macro curves (mean distance to the anchor, mean pairwise distance). Intervals
(``bootstrap``) come from conversations simulated from the fit (parametric) or from blocks of
rounds, each re-estimated by one Gauss-Newton step.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.engine.manifolds import get_manifold
from hivemind.engine.topology import Topology
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
# Two messages are the same text when their embeddings are this close (rad): identical texts
# embed identically, and two different sentences are never this close.
SAME = 1e-6


class ForecastFit(NamedTuple):
    model: str
    params: dict  # couplings, noise (sigma), observation_noise (tau), gain (k), and confidence / attractor
    n_params: int
    train_mse: float  # one-step, rad^2
    log_likelihood: float  # Gaussian innovations, training transitions
    aic: float


class _Params(NamedTuple):
    couplings: jax.Array  # (4,) in the order of COUPLINGS
    gain: jax.Array  # k in (0, 1]
    eps: jax.Array  # confidence (rad)
    bounded: jax.Array  # 1.0 where the confidence weight applies
    u: jax.Array  # the attractor, unnormalised


def _sphere(d: int):
    return get_manifold("sphere", d - 1)


def _unpack(free, theta) -> _Params:
    return _Params(free[:4] * jax.nn.softplus(theta[:4]), jax.nn.sigmoid(theta[4]), jax.nn.softplus(theta[5]), free[4], theta[6:])


def _step(manifold, topo: Topology, anchor, first, p: _Params, x):
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
    manifold = _sphere(ys.shape[-1])

    def body(m, inputs):
        now, after, o = inputs
        f = jnp.where(o[:, None], step(manifold, m), now)
        return manifold.exp(f, gain * manifold.log(f, after)), f

    return jax.lax.scan(body, ys[0], (ys[:-1], ys[1:], open_))[1]


def _forecasts(topo: Topology, anchor, p: _Params, ys, open_):
    """``filtered`` with the step of ``p``'s model."""
    return filtered(lambda manifold, x: _step(manifold, topo, anchor, ys[0], p, x), p.gain, ys, open_)


@jax.jit
def _ahead(h, topo: Topology, anchor, p: _Params, ys, open_):
    """The forecasts from every observed origin t = 0..R-1, ``h`` rounds ahead: (R, N, D). ``h``
    is traced (a while loop) and every origin computed, so that all lead times and origin sets
    share one compile."""
    manifold = _sphere(ys.shape[-1])
    first = _forecasts(topo, anchor, p, ys, open_)
    step = jax.vmap(lambda x: _step(manifold, topo, anchor, ys[0], p, x))
    return jax.lax.fori_loop(0, h - 1, lambda _, x: step(x), first)


def _loss(free, y, anchor, topo: Topology, open_, weights, theta):
    manifold = _sphere(y.shape[-1])
    f = _forecasts(topo, anchor, _unpack(free, theta), y, open_)
    return jnp.sum(jnp.mean(manifold.dist(f, y[1:]) ** 2, axis=1) * weights) / jnp.sum(weights)


_loss_value_and_grad = jax.jit(jax.value_and_grad(_loss, argnums=6))


def _descend(free, y, anchor, topo: Topology, open_, weights, theta):
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


def _prepare(y, anchor, topo):
    y = jnp.asarray(y, jnp.float64)
    # Without an anchor kappa is held at 0, but a zero vector's Log has a NaN derivative, and
    # 0 x NaN is NaN: any point of the sphere stands in.
    a = jnp.eye(y.shape[-1])[0] if anchor is None else jnp.asarray(anchor, jnp.float64)
    return y, a, Topology(*(jnp.asarray(t) for t in topo))


def _free(model: str, anchor) -> np.ndarray:
    free = np.asarray(FREE[model], np.float64)
    if anchor is None:
        free = free * np.array([1.0, 0.0, 1.0, 1.0, 1.0])  # no anchor, no anchor coupling
    return free


def _check(y, anchor, model: str, train: int) -> tuple[np.ndarray, int]:
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if anchor is None and model == "anchor":
        raise ValueError("the anchor model needs an anchor")
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    if not 1 <= train <= rounds:
        raise ValueError(f"train must be in [1, {rounds}], got {train}")
    return y, rounds


def _noises(gain: float, s: float, couplings: np.ndarray, topo: Topology) -> tuple[float, float]:
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


def _params(model: str, theta: np.ndarray, mse: float, free: np.ndarray, topo: Topology, d: int) -> dict:
    with jax.enable_x64(True):
        p = _unpack(jnp.asarray(free), jnp.asarray(theta))
        couplings, gain, eps, u = (np.asarray(v) for v in (p.couplings, p.gain, p.eps, p.u))
    params = {name: float(c) for name, c in zip(COUPLINGS, couplings, strict=True)}
    s = max(mse / (d - 1), 1e-300)  # per tangent dimension of the sphere
    params["noise"], params["observation_noise"] = _noises(float(gain), s, couplings, topo)
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
    y, rounds = _check(y, anchor, model, train)
    n, d = y.shape[1], y.shape[-1]
    w = (np.arange(rounds) < train).astype(np.float64) if weights is None else np.asarray(weights, np.float64)
    open_ = np.ones((rounds, n), bool) if open_ is None else np.asarray(open_, bool)
    if model == "copy":
        src, dst = _everyone(n) if src is None else (np.asarray(src), np.asarray(dst))
        params = copy_rates(y, src, dst, w)
        pred = _copy_forecast(y, src, dst, params, np.arange(rounds), open_)
        sq = _geodesic(pred, y[1:]) ** 2
        mse = float(np.sum(sq.mean(1) * w) / np.sum(w))
        params["noise"] = math.sqrt(mse / (d - 1))
        k = 3  # q_repeat, q_copy, and the noise
        return ForecastFit(model, params, k, mse, *_likelihood(mse, float(np.sum(w) * n), d, k))
    free = _free(model, anchor)
    with jax.enable_x64(True):
        yj, a, tj = _prepare(y, anchor, topo)
        theta, mse = _descend(jnp.asarray(free), yj, a, tj, jnp.asarray(open_), jnp.asarray(w), jnp.asarray(_start(y, w)))
        theta, mse = np.asarray(theta), float(mse)
    params = _params(model, theta, mse, free, topo, d)
    k = int(free.sum()) + 2 + (d - 1 if model == "attractor" else 0)  # + sigma and tau
    return ForecastFit(model, params, k, mse, *_likelihood(mse, float(np.sum(w) * n), d, k))


def _softplus_inverse(x: float) -> float:
    return x + math.log(-math.expm1(-x))


def _theta(f: ForecastFit, y: np.ndarray) -> np.ndarray:
    """The unconstrained vector of ``f``'s parameters (a coupling fitted to 0 starts from START)."""
    p = f.params
    raw = [_softplus_inverse(p[c]) if p[c] > 1e-12 else START[0] for c in COUPLINGS]
    gain = min(max(p["gain"], 1e-9), 1 - 1e-9)
    raw += [math.log(gain / (1 - gain)), _softplus_inverse(p["confidence"]) if "confidence" in p else START[2]]
    u = np.asarray(p["attractor"]) if "attractor" in p else _start(y)[6:]
    return np.concatenate([raw, u])


def _to_params(p: dict, d: int) -> _Params:
    return _Params(
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
        src, dst = _everyone(n) if src is None else (np.asarray(src), np.asarray(dst))
        return _copy_forecast(y, src, dst, f.params, origins, open_)
    with jax.enable_x64(True):
        yj, a, tj = _prepare(y, anchor, topo)
        out = _ahead(h, tj, a, _to_params(f.params, d), yj, jnp.asarray(open_))
        return np.asarray(out)[origins]


def _everyone(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    return j, i


def _heard(n: int, src, dst) -> np.ndarray:
    src, dst = np.asarray(src), np.asarray(dst)
    if src.size == 0:
        src, dst = _everyone(n)
    heard = np.zeros((n, n))
    heard[dst, src] = 1.0
    return heard


def _same(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.linalg.norm(u - v, axis=-1) < SAME


def gate(y: np.ndarray, src, dst) -> np.ndarray:
    """(R, N): False where agent i's own and in-neighbours' messages at round t equal those at
    t - 1, so that a deterministic decoder, given the same prompt, writes the same text at t + 1."""
    y = np.asarray(y, np.float64)
    changed = ~_same(y[1:], y[:-1])  # (R, N): y[t + 1] differs from y[t]
    heard = _heard(y.shape[1], src, dst)
    open_ = np.ones((y.shape[0] - 1, y.shape[1]), bool)
    open_[1:] = changed[:-1] | (changed[:-1] @ heard.T > 0)
    return open_


# How often a sampled decoder repeats its message when its prompt did not change: the highest
# share measured (Gemma 3 270M at temperature 0.4, 21 of 27 unchanged prompts; 1 of 4 at 0.8;
# figures/live_forecast.json). A sampled run passes the gate's rule with at most this to the power
# of its unchanged prompts.
SAMPLED_REPEAT = 21 / 27
# Unchanged prompts needed, all answered by the same text, before a decoder is called
# deterministic: a false alarm of at most SAMPLED_REPEAT^20 = 0.66 % (one coincidence, as in a
# T = 0.8 run with one unchanged prompt repeated, no longer qualifies).
MIN_UNCHANGED = 20


def deterministic(y: np.ndarray, src, dst, train: int) -> dict:
    """Does the decoder answer an unchanged prompt with the same text, in the training transitions?

    The rule: at least ``MIN_UNCHANGED`` unchanged prompts, every one answered by the same
    text; ``false_alarm`` bounds the chance that a sampled decoder passes it
    (``SAMPLED_REPEAT`` to the power of the unchanged prompts).
    """
    y = np.asarray(y, np.float64)
    closed = ~gate(y, src, dst)[:train]
    repeated = _same(y[1 : train + 1], y[:train])[closed]
    unchanged = int(closed.sum())
    detected = bool(unchanged >= MIN_UNCHANGED and repeated.all())
    return {
        "detected": detected,
        "unchanged_prompts": unchanged,
        "repeated": int(repeated.sum()),
        "rule": f"at least {MIN_UNCHANGED} unchanged prompts, each answered by the same text",
        "false_alarm": float(SAMPLED_REPEAT**unchanged) if unchanged else 1.0,
    }


def copy_rates(y: np.ndarray, src, dst, weights) -> dict:
    """The share of (weighted) agent-transitions that repeat the agent's own last message
    (``repeat_rate``), repeat an in-neighbour's last message instead (``copy_rate``), or neither."""
    y = np.asarray(y, np.float64)
    n = y.shape[1]
    heard = _heard(n, src, dst)
    repeat = _same(y[1:], y[:-1])  # (R, N)
    # Per round, not as one (R, N, N, D) difference: a thousand agents would not fit.
    copied = ~repeat & np.stack(
        [np.any(_same(a[:, None], b[None]) & (heard > 0), axis=-1) for a, b in zip(y[1:], y[:-1], strict=True)]
    )
    w = np.asarray(weights, np.float64)[:, None] * np.ones((1, n))
    total = float(w.sum())
    q_repeat, q_copy = float((w * repeat).sum() / total), float((w * copied).sum() / total)
    return {"repeat_rate": q_repeat, "copy_rate": q_copy, "new_rate": 1.0 - q_repeat - q_copy}


def _copy_forecast(y, src, dst, params: dict, origins, open_) -> np.ndarray:
    x = y[origins]
    neighbours = baselines(y, None, src, dst, origins)["neighbours"]
    q = params["repeat_rate"]
    f = _unit(q * x + (1.0 - q) * neighbours)
    return np.where(open_[origins][..., None], f, x)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norm > 1e-12, norm, 1.0)


def _geodesic(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return 2.0 * np.arcsin(np.clip(np.linalg.norm(u - v, axis=-1) / 2.0, 0.0, 1.0))


def baselines(y: np.ndarray, anchor: np.ndarray | None, src: np.ndarray, dst: np.ndarray, origins) -> dict:
    """Each baseline's forecast of y[t + 1] from y[t], t in ``origins``: name -> (len, N, D).

    ``neighbours`` is the normalised mean of an agent's in-neighbours (an edge src -> dst:
    dst hears src); an agent nobody talks to keeps its state.
    """
    y = np.asarray(y, np.float64)
    x = y[np.asarray(origins)]
    n = y.shape[1]
    heard = np.zeros((n, n))
    heard[np.asarray(dst), np.asarray(src)] = 1.0
    alone = heard.sum(1) == 0
    neighbours = _unit(np.einsum("ij,tjd->tid", heard, x))
    neighbours[:, alone] = x[:, alone]
    out = {
        "persistence": x,
        "neighbours": neighbours,
        "centroid": np.broadcast_to(_unit(x.mean(1, keepdims=True)), x.shape),
    }
    if anchor is not None:
        out["anchor"] = np.broadcast_to(np.asarray(anchor, np.float64), x.shape)
    return out


def _mean_pairwise(x: np.ndarray) -> np.ndarray:
    """Mean great-circle distance over agent pairs, per leading index: (T, N, D) -> (T,)."""
    n = x.shape[1]
    i, j = np.triu_indices(n, k=1)
    return _geodesic(x[:, i], x[:, j]).mean(1) if n > 1 else np.zeros(x.shape[0])


def score(y, anchor, topo: Topology, src, dst, fits: dict[str, ForecastFit], train: int, horizon: int = 3, open_=None) -> dict:
    """One-step skill on the held-out transitions train..R-1, and skill by lead time (see the module).

    Returns ``{"baselines": {name: mse}, "models": {model: {...}}, "window_sd": ...}``.
    """
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    origins = np.arange(train, rounds)
    truth = y[origins + 1]
    base_sq = {k: _geodesic(v, truth) ** 2 for k, v in baselines(y, anchor, src, dst, origins).items()}
    base = {k: float(np.mean(v)) for k, v in base_sq.items()}
    sq_persistence = base_sq["persistence"]
    out = {"baselines": base, "models": {}, "heldout_transitions": len(origins)}
    # Per held-out round: the raw material of intervals over rounds.
    out["baselines_by_round"] = {k: v.mean(1).tolist() for k, v in base_sq.items()}
    macro_obs = {"pairwise": _mean_pairwise(y)}
    if anchor is not None:
        macro_obs["anchor_distance"] = _geodesic(y, np.asarray(anchor)[None, None]).mean(1)
    out["window_sd"] = {k: float(np.std(v[train:])) for k, v in macro_obs.items()}
    for name, f in fits.items():
        pred = predict(y, anchor, topo, f, origins, 1, open_, src, dst)
        sq = _geodesic(pred, truth) ** 2
        mse = float(np.mean(sq))
        m = {"mse": mse, **{f"skill_vs_{b}": _skill(mse, v) for b, v in base.items()}, "mse_by_round": sq.mean(1).tolist()}
        # Per-round skill against persistence: its spread over rounds is the interval's raw material.
        m["skill_vs_persistence_by_round"] = [
            _skill(float(a.mean()), float(b.mean())) for a, b in zip(sq, sq_persistence, strict=True)
        ]
        leads = {}
        for h in range(1, horizon + 1):
            starts = np.arange(train, rounds - h + 1)
            if len(starts) == 0 or (f.model == "copy" and h > 1):
                break
            ahead = predict(y, anchor, topo, f, starts, h, open_, src, dst)
            obs = y[starts + h]
            state = _skill(float(np.mean(_geodesic(ahead, obs) ** 2)), float(np.mean(_geodesic(y[starts], obs) ** 2)))
            lead = {"states": state}
            for key, curve in macro_obs.items():
                if key == "anchor_distance":
                    pred_macro = _geodesic(ahead, np.asarray(anchor)[None, None]).mean(1)
                else:
                    pred_macro = _mean_pairwise(ahead)
                err, pers = pred_macro - curve[starts + h], curve[starts] - curve[starts + h]
                lead[key] = _skill(float(np.mean(err**2)), float(np.mean(pers**2)))
                lead[f"{key}_rmse"] = float(np.sqrt(np.mean(err**2)))
            leads[str(h)] = lead  # string keys, as JSON writes them
        m["by_lead"] = leads
        out["models"][name] = m
    return out


def _skill(mse: float, baseline: float) -> float | None:
    return None if baseline <= 0 else 1.0 - mse / baseline


def _block_weights(rounds: int, train: int, resamples: int, seed: int) -> np.ndarray:
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
    y, rounds = _check(y, anchor, model, train)
    open_ = np.ones((rounds, y.shape[1]), bool) if open_ is None else np.asarray(open_, bool)
    best = fit(y, anchor, topo, model, train, open_=open_, src=src, dst=dst)
    basic = method == "parametric" and model != "copy"
    if basic:
        draws, start = _parametric_draws(y, anchor, topo, best, train, resamples, seed)
    else:
        weights = _block_weights(rounds, train, resamples, seed)
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
    free = _free(best.model, anchor)
    draws = []
    with jax.enable_x64(True):
        yj, a, tj = _prepare(y, anchor, topo)
        fj, oj = jnp.asarray(free), jnp.asarray(open_)
        # Every resample starts from the full fit's optimum: a few L-BFGS steps move it to its own.
        start = jnp.asarray(_theta(best, y))
        for w in weights:
            theta, mse = _descend(fj, yj, a, tj, oj, jnp.asarray(w), start)
            draws.append(_params(best.model, np.asarray(theta), float(mse), free, topo, d))
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
    manifold = _sphere(y.shape[-1])
    u = manifold.exp(z, basis @ x[6:])
    params = _Params(x[:4], x[4], x[5], bounded, u)
    return manifold.log(y[1:], _forecasts(topo, anchor, params, y, open_))


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
        yj, a, tj = _prepare(y, anchor, topo)
        bounded = jnp.asarray(1.0 if self.bounded else 0.0)
        return bounded, tj, a, yj, jnp.asarray(open_), jnp.asarray(self.z), jnp.asarray(self.basis)


def _newton(best: ForecastFit, anchor, d: int, move_attractor: bool = True) -> _Newton:
    p = best.params
    free = _free(best.model, anchor)
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
    draw["noise"], draw["observation_noise"] = _noises(float(full[4]), max(mse / (d - 1), 1e-300), full[:4], topo)
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
def _simulate(rounds: int, topo: Topology, anchor, p: _Params, sigma, tau, x0, key):
    """Observed rounds 0..``rounds`` of the model from hidden states x0: process noise sigma and
    observation noise tau, each a tangent Gaussian per dimension. The stubbornness target is the
    first observed round, as in the fit."""
    manifold = _sphere(x0.shape[-1])

    def noisy(k, x, s):
        return manifold.exp(x, s * manifold.proj(x, jax.random.normal(k, x.shape, x.dtype)))

    k0, k1 = jax.random.split(key)
    first = noisy(k0, x0, tau)

    def body(x, k):
        ka, kb = jax.random.split(k)
        x = noisy(ka, _step(manifold, topo, anchor, first, p, x), sigma)
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
        p = _to_params(params, d)
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


def fit_all(
    y,
    anchor,
    topo: Topology,
    src,
    dst,
    train: int | None = None,
    models=MODELS,
    resamples: int = 0,
    seed: int = 0,
    horizon: int = 3,
    method: str = "parametric",
) -> dict:
    """Every model fitted on the first ``train`` transitions (default: half), scored on the rest,
    with ``bootstrap`` intervals from ``resamples`` draws by ``method`` (none if 0).

    The best model is chosen on the training transitions alone: the lowest AIC of its fit
    (``selection`` says so); its held-out skill is then read, not used to choose.
    """
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    train = max(1, rounds // 2) if train is None else train
    if not 1 <= train < rounds:
        raise ValueError(f"need at least one training and one held-out transition, got {rounds} rounds and train={train}")
    models = [m for m in models if not (m == "anchor" and anchor is None)]
    decoder = deterministic(y, src, dst, train)
    open_ = gate(y, src, dst) if decoder["detected"] else None
    fits, intervals = {}, {}
    for m in models:
        if resamples:
            # A deterministic decoder's exact repeats are not in the model's noise: resample its rounds.
            how = "blocks" if decoder["detected"] else method
            fits[m], intervals[m] = bootstrap(
                y, anchor, topo, m, train, resamples, seed, open_=open_, src=src, dst=dst, method=how
            )
        else:
            fits[m] = fit(y, anchor, topo, m, train, open_=open_, src=src, dst=dst)
    scores = score(y, anchor, topo, src, dst, fits, train, horizon, open_)
    out = {"agents": int(y.shape[1]), "rounds": rounds, "dims": int(y.shape[2]), "deterministic_decoder": decoder}
    out |= {"train_transitions": train, "heldout_transitions": rounds - train, "baselines": scores["baselines"]}
    out["baselines_by_round"] = scores["baselines_by_round"]
    out["window_sd"] = scores["window_sd"]
    out["models"] = {}
    for m, f in fits.items():
        entry = {
            "params": f.params,
            "n_params": f.n_params,
            "train_mse": f.train_mse,
            "aic": f.aic,
            "one_step": {k: v for k, v in scores["models"][m].items() if k != "by_lead"},
            "by_lead": scores["models"][m]["by_lead"],
        }
        if m in intervals:
            entry["intervals"] = intervals[m]
        out["models"][m] = entry
    # AICs equal to 6 digits (a coupling fitted to zero makes two nested models one) go to the smaller model.
    out["best"] = min(fits, key=lambda m: (round(fits[m].aic, 6), fits[m].n_params))
    out["selection"] = "lowest AIC of the fit to the training transitions"
    return out
