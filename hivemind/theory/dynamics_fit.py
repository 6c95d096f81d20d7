"""The engine's dynamics fitted to observed trajectories on the sphere, by gradient through the rounds.

Observed: unit vectors y[r, i] of every agent i at rounds r = 0..R (embeddings of a
conversation, or any run), an anchor a that never moves, and the graph the agents
talked on. The model is the engine's geodesic step, one per round,

    x_i <- Exp_{x_i}( eta / m_i sum_j w_ij Log_{x_i}(x_j)  +  kappa Log_{x_i}(a)  + sigma xi ),

with m_i agent i's peer degree and xi a standard tangent Gaussian, in three nested models:

- ``"anchor"``: the paper's, anchor pull kappa only (eta = 0, sigma = 0);
- ``"peer"``: peer pull eta and a separate anchor coupling kappa;
- ``"noise"``: ``"peer"`` plus tangent noise sigma, fitted by moment matching: sigma^2
  is the mean squared one-round residual of the fitted mean dynamics, per tangent
  dimension (the noise does not move the mean, so it is fitted after it).

eta and kappa minimise the mean squared geodesic distance between the deterministic
run from y[0] and the observations over the training rounds, with ``jax.value_and_grad``
through the whole run (the pull's reverse-mode path) and Adam. Held out: the run
continues from the observed state at the last training round and is scored on the
rounds after it. ``anchor_interval`` bootstraps kappa over agents.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hivemind.engine import energy
from hivemind.engine.manifolds import get_manifold
from hivemind.engine.topology import GraphArrays, Topology, build_topology

MODELS = ("anchor", "peer", "noise")


class DynamicsFit(NamedTuple):
    model: str
    params: dict  # peer_coupling (eta), anchor_coupling (kappa), noise (sigma)
    train_rmse: float  # radians, over the training rounds
    heldout_rmse: float  # radians, over the held-out rounds
    heldout_r2: float | None  # of the mean distance to the anchor over the held-out rounds
    predicted_mean_distance: np.ndarray  # (R + 1,): training run, then the held-out continuation


def peer_topology(n: int, src: np.ndarray, dst: np.ndarray, directed: bool = False) -> Topology:
    """The agents' own graph (no anchor) as the engine's topology, each message weighted 1 / in-degree."""
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    arrays = GraphArrays(list(range(n)), src, dst, np.ones(src.size), directed, np.ones(n))
    topo = build_topology(arrays, anchors=[], dtype=np.float64)
    deg = np.bincount(topo.receivers, minlength=n).astype(np.float64)
    return topo._replace(weights=topo.weights / deg[topo.receivers])


def _step(manifold, topo: Topology, anchor, eta, kappa, x):
    peers = energy.pull(manifold, x, topo, differentiable=True)
    v = eta * peers + kappa * manifold.log(x, jnp.broadcast_to(anchor, x.shape))
    return manifold.exp(x, v)


def run(manifold, topo: Topology, anchor, eta, kappa, x0, rounds: int):
    """States at rounds 0..rounds of the deterministic model from x0: (rounds + 1, N, D)."""

    def body(x, _):
        y = _step(manifold, topo, anchor, eta, kappa, x)
        return y, y

    _, xs = jax.lax.scan(body, x0, None, length=rounds)
    return jnp.concatenate([x0[None], xs])


def _r2(pred: np.ndarray, obs: np.ndarray) -> float | None:
    ss = float(np.sum((obs - obs.mean()) ** 2))
    return None if ss <= 1e-12 * max(obs.size, 1) else 1.0 - float(np.sum((obs - pred) ** 2)) / ss


def _unpack(model: str, theta):
    # Couplings are positive: softplus keeps them so and leaves the optimum interior.
    eta = jax.nn.softplus(theta[0]) if model != "anchor" else jnp.zeros((), theta.dtype)
    return eta, jax.nn.softplus(theta[1])


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _descend(model: str, train: int, learning_rate: float, iterations: int, y, anchor, topo: Topology, weights):
    """Adam on the weighted mean squared distance of the run from y[0] to the training rounds: theta.

    The whole descent is one compiled loop (one dispatch per fit), and ``weights`` may
    carry a leading batch axis under ``jax.vmap``: the bootstrap fits all resamples at once.
    """
    manifold = get_manifold("sphere", y.shape[-1] - 1)
    opt = optax.adam(learning_rate)

    def loss(theta):
        eta, kappa = _unpack(model, theta)
        xs = run(manifold, topo, anchor, eta, kappa, y[0], train)
        return jnp.sum(jnp.mean(manifold.dist(xs[1:], y[1 : train + 1]) ** 2, axis=0) * weights)

    def body(_, carry):
        theta, state = carry
        updates, state = opt.update(jax.grad(loss)(theta), state)
        return optax.apply_updates(theta, updates), state

    theta = jnp.array([-2.0, -2.0], y.dtype)  # softplus -> 0.13: a small pull to start from
    theta, _ = jax.lax.fori_loop(0, iterations, body, (theta, opt.init(theta)))
    return theta


def fit(
    y: np.ndarray,
    anchor: np.ndarray,
    topo: Topology,
    model: str = "peer",
    train_rounds: int | None = None,
    iterations: int = 400,
    learning_rate: float = 0.05,
    agent_weights: np.ndarray | None = None,
) -> DynamicsFit:
    """Fit ``model`` to observed unit vectors ``y`` (R + 1, N, D) with fixed ``anchor`` (D,); see the module.

    ``agent_weights`` (N,) weighs each agent's squared distances in the training loss
    (the bootstrap's multiplicities); the dynamics always run on the whole graph.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    train = rounds // 2 if train_rounds is None else train_rounds
    if not 1 <= train < rounds:
        raise ValueError(f"need at least one training and one held-out round, got {rounds} rounds and train_rounds={train}")
    with jax.enable_x64(True):
        manifold = get_manifold("sphere", y.shape[-1] - 1)
        a = jnp.asarray(anchor, jnp.float64)
        yj = jnp.asarray(y)
        topo = Topology(*(jnp.asarray(t) for t in topo))
        weights = jnp.ones(y.shape[1]) if agent_weights is None else jnp.asarray(agent_weights, jnp.float64)
        theta = _descend(model, train, learning_rate, iterations, yj, a, topo, weights / jnp.sum(weights))
        eta, kappa = _unpack(model, theta)
        fitted = run(manifold, topo, a, eta, kappa, yj[0], train)
        ahead = run(manifold, topo, a, eta, kappa, yj[train], rounds - train)
        train_rmse = float(jnp.sqrt(jnp.mean(manifold.dist(fitted[1:], yj[1 : train + 1]) ** 2)))
        heldout_rmse = float(jnp.sqrt(jnp.mean(manifold.dist(ahead[1:], yj[train + 1 :]) ** 2)))
        sigma = 0.0
        if model == "noise":
            # One-round residuals of the mean dynamics from each observed state.
            one = jax.vmap(lambda x: _step(manifold, topo, a, eta, kappa, x))(yj[:train])
            resid = manifold.log(one, yj[1 : train + 1])
            sigma = float(jnp.sqrt(jnp.mean(jnp.sum(resid**2, -1)) / manifold.dim))
        pred = np.concatenate([np.asarray(fitted), np.asarray(ahead[1:])])
        d_pred = np.asarray(manifold.dist(jnp.asarray(pred), a[None, None])).mean(axis=1)
        d_obs = np.asarray(manifold.dist(yj, a[None, None])).mean(axis=1)
    params = {"peer_coupling": float(eta), "anchor_coupling": float(kappa), "noise": sigma}
    return DynamicsFit(model, params, train_rmse, heldout_rmse, _r2(d_pred[train + 1 :], d_obs[train + 1 :]), d_pred)


def anchor_interval(
    y: np.ndarray,
    anchor: np.ndarray,
    topo: Topology,
    model: str = "peer",
    resamples: int = 20,
    seed: int = 0,
    level: float = 0.9,
    train_rounds: int | None = None,
    iterations: int = 400,
    learning_rate: float = 0.05,
) -> tuple[float, float]:
    """A percentile bootstrap interval for kappa over agents.

    Each resample draws N agents with replacement (from ``jax.random.key(seed)``) and
    refits with every agent's loss weighted by how often it was drawn. The agents stay
    coupled on the whole graph, so no resample cuts a neighbour out of anyone's peer
    term, as dropping agents would. All resamples are fitted in one vectorised descent.
    """
    if model not in ("anchor", "peer", "noise"):
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    y = np.asarray(y, np.float64)
    n, rounds = y.shape[1], y.shape[0] - 1
    train = rounds // 2 if train_rounds is None else train_rounds
    draws = jax.vmap(lambda k: jax.random.randint(k, (n,), 0, n))(jax.random.split(jax.random.key(seed), resamples))
    counts = jax.vmap(lambda d: jnp.bincount(d, length=n))(draws)
    mean_model = "peer" if model == "noise" else model  # the noise does not move the mean: same kappa
    with jax.enable_x64(True):
        weights = counts.astype(jnp.float64) / n
        topo = Topology(*(jnp.asarray(t) for t in topo))
        yj, a = jnp.asarray(y), jnp.asarray(anchor, jnp.float64)
        thetas = jax.vmap(lambda w: _descend(mean_model, train, learning_rate, iterations, yj, a, topo, w))(weights)
        kappas = np.asarray(jax.nn.softplus(thetas[:, 1]))
    lo, hi = np.quantile(kappas, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
