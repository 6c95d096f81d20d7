"""Models of observed trajectories on the sphere, fitted and scored as forecasts, one round ahead.

Observed: unit vectors y[t, i] of every agent i at rounds t = 0..R (the embeddings of a
conversation, or any run), optionally an anchor a that never moves, and the graph the
agents talked on. Every model is one geodesic step of the engine's form,

    x_i <- Exp_{x_i}( eta / m_i sum_j Log_{x_i}(x_j) + kappa Log_{x_i}(a)
                      + theta Log_{x_i}(y[0, i]) + gamma Log_{x_i}(z) )  (+ tangent noise),

nested as in ``MODELS``: ``anchor`` (kappa), ``peer`` (eta, kappa), ``fj`` (plus
Friedkin-Johnsen stubbornness theta toward each agent's own first message) and
``attractor`` (plus a pull gamma toward a free point z of the sphere: where the
population goes when nobody pulls, the model's own prior). Without an anchor, kappa is 0.

Fitting is by the one-step loss (the prediction-error method): the conditional Gaussian
likelihood of each round given the observed previous round, so the couplings minimise
the mean squared geodesic distance between step(y[t]) and y[t + 1] over the training
transitions, and the process noise sigma is its maximum-likelihood value (the residual's
mean square per tangent dimension). z is fitted through an unnormalised vector u, z =
u / |u|: the gradient in u is the Riemannian gradient at z (projected on the tangent
space), scaled by 1 / |u|. Couplings stay positive through softplus.

Scores (``score``): one round ahead from every observed state of the held-out rounds,
per agent, as MSE in rad^2 and as skill 1 - MSE / MSE_baseline against four baselines
measured the same way: persistence (x = y[t]), copy-the-neighbours (the normalised mean
of the agent's in-neighbours), the population centroid, and the anchor. By lead time h,
the deterministic model runs h rounds from every observed origin and is scored against
persistence, for the states and for the macro curves (mean distance to the anchor, mean
pairwise distance). Intervals come from a moving-block bootstrap over the training
transitions (``block_bootstrap``).
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
from hivemind.theory.dynamics_fit import lbfgs_minimize, peer_pull

MODELS = ("anchor", "peer", "fj", "attractor")
COUPLINGS = ("peer_coupling", "anchor_coupling", "stubbornness", "attractor_coupling")
# Which couplings each model frees (1) or holds at zero (0), in the order of COUPLINGS.
FREE = {
    "anchor": (0.0, 1.0, 0.0, 0.0),
    "peer": (1.0, 1.0, 0.0, 0.0),
    "fj": (1.0, 1.0, 1.0, 0.0),
    "attractor": (1.0, 1.0, 1.0, 1.0),
}
BASELINES = ("persistence", "neighbours", "centroid", "anchor")
# softplus(-3) = 0.05: a small pull of every kind to start from.
START = -3.0
GRADIENT_TOLERANCE = 1e-9
MAX_ITERATIONS = 300


class ForecastFit(NamedTuple):
    model: str
    params: dict  # the couplings, noise (sigma), and attractor (z) for "attractor"
    n_params: int  # couplings + sigma (+ the attractor's D - 1 coordinates)
    train_mse: float  # one-step, rad^2
    log_likelihood: float  # conditional Gaussian, training transitions
    aic: float


def _sphere(d: int):
    return get_manifold("sphere", d - 1)


def _unpack(free, theta):
    return jnp.asarray(free) * jax.nn.softplus(theta[:4]), theta[4:]


def _step(manifold, topo: Topology, anchor, first, couplings, u, x):
    eta, kappa, stub, gamma = couplings[0], couplings[1], couplings[2], couplings[3]
    z = u / jnp.linalg.norm(u)
    v = eta * peer_pull(manifold, topo, x)
    v = v + kappa * manifold.log(x, jnp.broadcast_to(anchor, x.shape))
    v = v + stub * manifold.log(x, first)
    v = v + gamma * manifold.log(x, jnp.broadcast_to(z, x.shape))
    return manifold.exp(x, v)


def _one_step(topo: Topology, anchor, first, couplings, u, ys):
    """step(ys[t]) for every t: (T, N, D)."""
    manifold = _sphere(ys.shape[-1])
    return jax.vmap(lambda x: _step(manifold, topo, anchor, first, couplings, u, x))(ys)


@functools.partial(jax.jit, static_argnums=(0,))
def _ahead(h: int, topo: Topology, anchor, first, couplings, u, xs):
    """``h`` deterministic steps from each of the states ``xs`` (T, N, D)."""
    return jax.lax.fori_loop(0, h, lambda _, x: _one_step(topo, anchor, first, couplings, u, x), xs)


@jax.jit
def _descend(free, y, anchor, topo: Topology, weights, theta):
    """Parameters minimising the weighted one-step loss over the transitions y[t] -> y[t + 1]
    (``weights`` per transition: 1 for the training ones, the bootstrap's counts, 0 held out)."""
    manifold = _sphere(y.shape[-1])

    def loss(theta):
        couplings, u = _unpack(free, theta)
        pred = _one_step(topo, anchor, y[0], couplings, u, y[:-1])
        return jnp.sum(jnp.mean(manifold.dist(pred, y[1:]) ** 2, axis=1) * weights) / jnp.sum(weights)

    return lbfgs_minimize(loss, theta, MAX_ITERATIONS, GRADIENT_TOLERANCE)


def _start(y: np.ndarray, model: str) -> np.ndarray:
    # The attractor starts at the population's mean over all rounds: where it spends its time.
    u = y.reshape(-1, y.shape[-1]).mean(0)
    u = u / np.linalg.norm(u) if np.linalg.norm(u) > 1e-12 else np.eye(y.shape[-1])[0]
    return np.concatenate([np.full(4, START), u])


def _prepare(y, anchor, topo):
    y = jnp.asarray(y, jnp.float64)
    a = jnp.zeros(y.shape[-1]) if anchor is None else jnp.asarray(anchor, jnp.float64)
    return y, a, Topology(*(jnp.asarray(t) for t in topo))


def _free(model: str, anchor) -> np.ndarray:
    free = np.asarray(FREE[model])
    if anchor is None:
        free = free * np.array([1.0, 0.0, 1.0, 1.0])  # no anchor, no anchor coupling
    return free


def fit(y: np.ndarray, anchor: np.ndarray | None, topo: Topology, model: str, train: int, weights=None) -> ForecastFit:
    """``model`` fitted to the one-step transitions of rounds 0..``train`` of ``y`` (R + 1, N, D).

    ``weights`` (R,) weighs each transition t -> t + 1 (default: 1 for t < train, else 0).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if anchor is None and model == "anchor":
        raise ValueError("the anchor model needs an anchor")
    y = np.asarray(y, np.float64)
    rounds, d = y.shape[0] - 1, y.shape[-1]
    if not 1 <= train <= rounds:
        raise ValueError(f"train must be in [1, {rounds}], got {train}")
    if weights is None:
        weights = (np.arange(rounds) < train).astype(np.float64)
    with jax.enable_x64(True):
        yj, a, topo = _prepare(y, anchor, topo)
        free = jnp.asarray(_free(model, anchor))
        theta = _descend(free, yj, a, topo, jnp.asarray(weights), jnp.asarray(_start(y, model)))
        couplings, u = _unpack(free, theta)
        pred = _ahead(1, topo, a, yj[0], couplings, u, yj[:-1])
        sq = np.asarray(_sphere(d).dist(pred, yj[1:]) ** 2)  # (R, N)
        couplings, u = np.asarray(couplings), np.asarray(u)
    w = np.asarray(weights, np.float64)
    mse = float(np.sum(sq.mean(1) * w) / np.sum(w))
    dim = d - 1  # the sphere's tangent dimension
    sigma2 = max(mse / dim, 1e-300)
    n = float(np.sum(w) * y.shape[1])  # transitions x agents
    log_lik = -0.5 * n * (dim * math.log(2 * math.pi * sigma2) + mse / sigma2)
    params = {name: float(c) for name, c in zip(COUPLINGS, couplings, strict=True)}
    params["noise"] = math.sqrt(sigma2)
    k = int(_free(model, anchor).sum()) + 1
    if model == "attractor":
        params["attractor"] = (u / np.linalg.norm(u)).tolist()
        k += d - 1
    return ForecastFit(model, params, k, mse, log_lik, 2 * k - 2 * log_lik)


def predict(y: np.ndarray, anchor: np.ndarray | None, topo: Topology, f: ForecastFit, origins, h: int = 1) -> np.ndarray:
    """The deterministic model run ``h`` rounds from each observed state y[t], t in ``origins``: (len, N, D)."""
    y = np.asarray(y, np.float64)
    d = y.shape[-1]
    couplings = np.array([f.params[c] for c in COUPLINGS])
    u = np.asarray(f.params.get("attractor", np.eye(d)[0]))
    with jax.enable_x64(True):
        yj, a, topo = _prepare(y, anchor, topo)
        return np.asarray(_ahead(h, topo, a, yj[0], jnp.asarray(couplings), jnp.asarray(u), yj[jnp.asarray(origins)]))


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


def score(y, anchor, topo: Topology, src, dst, fits: dict[str, ForecastFit], train: int, horizon: int = 3) -> dict:
    """One-step skill on the held-out transitions train..R-1, and skill by lead time (see the module).

    Returns ``{"baselines": {name: mse}, "models": {model: {...}}, "window_sd": ...}``.
    """
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    origins = np.arange(train, rounds)
    truth = y[origins + 1]
    base = {k: float(np.mean(_geodesic(v, truth) ** 2)) for k, v in baselines(y, anchor, src, dst, origins).items()}
    sq_persistence = _geodesic(y[origins], truth) ** 2
    out = {"baselines": base, "models": {}, "heldout_transitions": len(origins)}
    macro_obs = {"pairwise": _mean_pairwise(y)}
    if anchor is not None:
        macro_obs["anchor_distance"] = _geodesic(y, np.asarray(anchor)[None, None]).mean(1)
    out["window_sd"] = {k: float(np.std(v[train:])) for k, v in macro_obs.items()}
    for name, f in fits.items():
        pred = predict(y, anchor, topo, f, origins, 1)
        sq = _geodesic(pred, truth) ** 2
        mse = float(np.mean(sq))
        m = {"mse": mse, **{f"skill_vs_{b}": _skill(mse, v) for b, v in base.items()}}
        # Per-round skill against persistence: its spread over rounds is the interval's raw material.
        m["skill_vs_persistence_by_round"] = [
            _skill(float(a.mean()), float(b.mean())) for a, b in zip(sq, sq_persistence, strict=True)
        ]
        leads = {}
        for h in range(1, horizon + 1):
            starts = np.arange(train, rounds - h + 1)
            if len(starts) == 0:
                break
            ahead = predict(y, anchor, topo, f, starts, h)
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


def block_bootstrap(y, anchor, topo: Topology, model: str, train: int, resamples: int = 1000, seed: int = 0, level: float = 0.9):
    """Percentile intervals of every coupling and the noise from a moving-block bootstrap over the
    training transitions (blocks of about sqrt(train) consecutive transitions, drawn with replacement
    from ``jax.random.key(seed)``; a transition's weight is how often it was drawn).

    Resampling rounds, not agents, keeps the agents' dependence on each other whole; blocks keep
    the rounds' dependence on their neighbours in time.
    """
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    block = max(1, int(round(math.sqrt(train))))
    starts = train - block + 1
    n_blocks = math.ceil(train / block)
    keys = jax.random.split(jax.random.key(seed), resamples)
    picks = np.asarray(jax.vmap(lambda k: jax.random.randint(k, (n_blocks,), 0, starts))(keys))
    best = fit(y, anchor, topo, model, train)
    draws = {c: [] for c in (*COUPLINGS, "noise")}
    for p in picks:
        w = np.zeros(rounds)
        for s in p:
            w[s : s + block] += 1.0
        f = fit(y, anchor, topo, model, train, weights=w)
        for c in draws:
            draws[c].append(f.params[c])
    q = [(1 - level) / 2, (1 + level) / 2]
    return best, {c: [float(v) for v in np.quantile(draws[c], q)] for c in draws}


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
) -> dict:
    """Every model fitted on the first ``train`` transitions (default: half), scored on the rest.

    The best model is the one with the best held-out one-step skill against persistence.
    """
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    train = max(1, rounds // 2) if train is None else train
    if not 1 <= train < rounds:
        raise ValueError(f"need at least one training and one held-out transition, got {rounds} rounds and train={train}")
    models = [m for m in models if not (m == "anchor" and anchor is None)]
    fits = {m: fit(y, anchor, topo, m, train) for m in models}
    scores = score(y, anchor, topo, src, dst, fits, train, horizon)
    out = {"agents": int(y.shape[1]), "rounds": rounds, "dims": int(y.shape[2])}
    out |= {"train_transitions": train, "heldout_transitions": rounds - train, "baselines": scores["baselines"]}
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
        if resamples:
            _, entry["intervals"] = block_bootstrap(y, anchor, topo, m, train, resamples, seed)
        out["models"][m] = entry
    skill = {m: out["models"][m]["one_step"]["skill_vs_persistence"] for m in fits}
    # Skills equal to 6 digits (a coupling fitted to zero makes two nested models one) go to the smaller model.
    out["best"] = max(skill, key=lambda m: (-math.inf if skill[m] is None else round(skill[m], 6), -fits[m].n_params))
    return out
