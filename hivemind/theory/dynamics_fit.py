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
through the whole run (the pull's reverse-mode path) and L-BFGS, to convergence.
Held out: the run continues from the observed state at the last training round and is
scored on the rounds after it. ``anchor_interval`` bootstraps kappa over agents.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.engine.manifolds import get_manifold
from hivemind.engine.topology import GraphArrays, Topology, build_topology
from hivemind.theory.minimize import lbfgs

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


def peer_pull(manifold, topo: Topology, x):
    """sum over messages j -> i of w_ij Log_{x_i}(x_j): the engine's pull (``energy.pull``), summed
    by a dense (agents, messages) matmul instead of a scatter. A fit has few agents, and under
    ``jax.vmap`` (the noise model's paths) XLA's CPU scatter runs element by element, a matmul
    does not."""
    logs = manifold.log(x[topo.receivers], x[topo.senders])
    incidence = jax.nn.one_hot(topo.receivers, x.shape[0], dtype=x.dtype).T * topo.weights.astype(x.dtype)
    return incidence @ logs


def _velocity(manifold, topo: Topology, anchor, eta, kappa, x):
    return eta * peer_pull(manifold, topo, x) + kappa * manifold.log(x, jnp.broadcast_to(anchor, x.shape))


def _step(manifold, topo: Topology, anchor, eta, kappa, x):
    return manifold.exp(x, _velocity(manifold, topo, anchor, eta, kappa, x))


def run(manifold, topo: Topology, anchor, eta, kappa, x0, rounds: int):
    """States at rounds 0..rounds of the deterministic model from x0: (rounds + 1, N, D)."""

    def body(x, _):
        y = _step(manifold, topo, anchor, eta, kappa, x)
        return y, y

    _, xs = jax.lax.scan(body, x0, None, length=rounds)
    return jnp.concatenate([x0[None], xs])


def r_squared(pred: np.ndarray, obs: np.ndarray) -> float | None:
    ss = float(np.sum((obs - obs.mean()) ** 2))
    return None if ss <= 1e-12 * max(obs.size, 1) else 1.0 - float(np.sum((obs - pred) ** 2)) / ss


def _unpack(free_eta, theta):
    # Couplings are positive: softplus keeps them so and leaves the optimum interior. The
    # anchor-only model multiplies eta by free_eta = 0 (traced, so every model shares one compile).
    return free_eta * jax.nn.softplus(theta[0]), jax.nn.softplus(theta[1])


# softplus(-2) = 0.13: a small pull of both kinds to start from.
START = np.array([-2.0, -2.0])
# L-BFGS stops when the loss gradient in the softplus coordinates is this small. A coupling whose
# best value is zero has no finite optimum there: its coordinate runs down until softplus(theta)
# times the loss's slope is below the tolerance, so it ends at ~1e-8 or less, which reads as zero.
GRADIENT_TOLERANCE = 1e-10
MAX_ITERATIONS = 200


def _free_eta(model: str) -> float:
    return 0.0 if model == "anchor" else 1.0


@functools.partial(jax.jit, static_argnums=(0,))
def _loss_value_and_grad(train: int, free_eta, y, anchor, topo: Topology, weights, theta):
    """The weighted mean squared distance of the run from y[0] to the training rounds, and its
    gradient in theta, by ``jax.value_and_grad`` through the rounds."""
    manifold = get_manifold("sphere", y.shape[-1] - 1)

    def loss(theta):
        eta, kappa = _unpack(free_eta, theta)
        xs = run(manifold, topo, anchor, eta, kappa, y[0], train)
        return jnp.sum(jnp.mean(manifold.dist(xs[1:], y[1 : train + 1]) ** 2, axis=0) * weights)

    return jax.value_and_grad(loss)(theta)


def _descend(train: int, iterations: int, free_eta, y, anchor, topo: Topology, weights, theta) -> jax.Array:
    """theta minimising that loss by L-BFGS (``minimize.lbfgs``), until the gradient is below
    ``GRADIENT_TOLERANCE`` or after ``iterations`` steps. A fixed number of first-order steps is
    not enough: the loss is nearly flat in a small kappa (on 32 real agents, 400 Adam steps
    stopped at 2.4 times the optimum). ``weights`` is an argument, so the bootstrap's resamples
    reuse the compilation."""
    step = functools.partial(_loss_value_and_grad, train, free_eta, y, anchor, topo, weights)
    return jnp.asarray(lbfgs(lambda t: step(jnp.asarray(t)), theta, iterations, GRADIENT_TOLERANCE))


@functools.partial(jax.jit, static_argnums=(0,))
def _evaluate(train: int, free_eta, theta, y, anchor, topo: Topology):
    """Fitted run, held-out continuation, their RMSEs, sigma by moment matching, and mean distances."""
    manifold = get_manifold("sphere", y.shape[-1] - 1)
    rounds = y.shape[0] - 1
    eta, kappa = _unpack(free_eta, theta)
    fitted = run(manifold, topo, anchor, eta, kappa, y[0], train)
    ahead = run(manifold, topo, anchor, eta, kappa, y[train], rounds - train)
    train_rmse = jnp.sqrt(jnp.mean(manifold.dist(fitted[1:], y[1 : train + 1]) ** 2))
    heldout_rmse = jnp.sqrt(jnp.mean(manifold.dist(ahead[1:], y[train + 1 :]) ** 2))
    # One-round residuals of the mean dynamics from each observed training state.
    one = jax.vmap(lambda x: _step(manifold, topo, anchor, eta, kappa, x))(y[:train])
    resid = manifold.log(one, y[1 : train + 1])
    sigma = jnp.sqrt(jnp.mean(jnp.sum(resid**2, -1)) / manifold.dim)
    pred = jnp.concatenate([fitted, ahead[1:]])
    d_pred = manifold.dist(pred, anchor[None, None]).mean(axis=1)
    d_obs = manifold.dist(y, anchor[None, None]).mean(axis=1)
    return eta, kappa, train_rmse, heldout_rmse, sigma, d_pred, d_obs


@functools.partial(jax.jit, static_argnums=(0,))
def mean_distance_ahead(rounds: int, topo: Topology, anchor, eta, kappa, x0):
    """The mean distance to the anchor at rounds 0..rounds of the deterministic model from x0,
    without keeping the states (a long run of many agents in high dimension stays small)."""
    manifold = get_manifold("sphere", x0.shape[-1] - 1)

    def body(x, _):
        y = _step(manifold, topo, anchor, eta, kappa, x)
        return y, manifold.dist(y, anchor[None]).mean()

    _, d = jax.lax.scan(body, x0, None, length=rounds)
    return jnp.concatenate([manifold.dist(x0, anchor[None]).mean()[None], d])


@functools.partial(jax.jit, static_argnums=(0, 1))
def noisy_mean_distance(rounds: int, paths: int, topo: Topology, anchor, eta, kappa, sigma, x0, key):
    """The mean distance to the anchor at rounds 0..rounds of the noisy model from x0, averaged
    over agents and ``paths`` independent paths (tangent Gaussian noise from ``key``)."""
    manifold = get_manifold("sphere", x0.shape[-1] - 1)

    def one_path(key):
        def body(x, k):
            xi = manifold.proj(x, jax.random.normal(k, x.shape, x.dtype))
            y = manifold.exp(x, _velocity(manifold, topo, anchor, eta, kappa, x) + sigma * xi)
            return y, manifold.dist(y, anchor[None]).mean()

        _, d = jax.lax.scan(body, x0, jax.random.split(key, rounds))
        return d

    d = jax.vmap(one_path)(jax.random.split(key, paths)).mean(axis=0)
    return jnp.concatenate([manifold.dist(x0, anchor[None]).mean()[None], d])


def fit(
    y: np.ndarray,
    anchor: np.ndarray,
    topo: Topology,
    model: str = "peer",
    train_rounds: int | None = None,
    iterations: int = MAX_ITERATIONS,
    agent_weights: np.ndarray | None = None,
    seed: int = 0,
    paths: int = 16,
) -> DynamicsFit:
    """Fit ``model`` to observed unit vectors ``y`` (R + 1, N, D) with fixed ``anchor`` (D,); see the module.

    ``agent_weights`` (N,) weighs each agent's squared distances in the training loss
    (the bootstrap's multiplicities); the dynamics always run on the whole graph. The
    ``"noise"`` model's mean distance curve (and so its R^2) is the average of ``paths``
    noisy runs from ``jax.random.key(seed)``: noise keeps agents off the anchor, so it
    predicts a floor where the deterministic models predict collapse.
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    y = np.asarray(y, np.float64)
    rounds = y.shape[0] - 1
    train = rounds // 2 if train_rounds is None else train_rounds
    if not 1 <= train < rounds:
        raise ValueError(f"need at least one training and one held-out round, got {rounds} rounds and train_rounds={train}")
    with jax.enable_x64(True):
        a = jnp.asarray(anchor, jnp.float64)
        yj = jnp.asarray(y)
        topo = Topology(*(jnp.asarray(t) for t in topo))
        weights = jnp.ones(y.shape[1]) if agent_weights is None else jnp.asarray(agent_weights, jnp.float64)
        free = _free_eta(model)
        theta = _descend(train, iterations, free, yj, a, topo, weights / jnp.sum(weights), START)
        out = _evaluate(train, free, theta, yj, a, topo)
        eta, kappa, train_rmse, heldout_rmse, sigma, d_pred, d_obs = (np.asarray(v) for v in out)
    sigma = float(sigma) if model == "noise" else 0.0
    if model == "noise":
        with jax.enable_x64(True):
            k_train, k_ahead = jax.random.split(jax.random.key(seed))
            before = noisy_mean_distance(train, paths, topo, a, eta, kappa, sigma, yj[0], k_train)
            after = noisy_mean_distance(rounds - train, paths, topo, a, eta, kappa, sigma, yj[train], k_ahead)
            d_pred = np.concatenate([np.asarray(before), np.asarray(after)[1:]])
    params = {"peer_coupling": float(eta), "anchor_coupling": float(kappa), "noise": sigma}
    r2 = r_squared(d_pred[train + 1 :], d_obs[train + 1 :])
    return DynamicsFit(model, params, float(train_rmse), float(heldout_rmse), r2, d_pred)


def anchor_interval(
    y: np.ndarray,
    anchor: np.ndarray,
    topo: Topology,
    model: str = "peer",
    resamples: int = 20,
    seed: int = 0,
    level: float = 0.9,
    train_rounds: int | None = None,
    iterations: int = MAX_ITERATIONS,
) -> tuple[float, float]:
    """A percentile bootstrap interval for kappa over agents.

    Each resample draws N agents with replacement (from ``jax.random.key(seed)``) and
    refits with every agent's loss weighted by how often it was drawn. The agents stay
    coupled on the whole graph, so no resample cuts a neighbour out of anyone's peer
    term, as dropping agents would. Each resample is fitted by the same compiled descent,
    started from the whole data's optimum (a resample's optimum is near it) and run to
    the same tolerance.
    """
    if model not in ("anchor", "peer", "noise"):
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    y = np.asarray(y, np.float64)
    n, rounds = y.shape[1], y.shape[0] - 1
    train = rounds // 2 if train_rounds is None else train_rounds
    draws = jax.vmap(lambda k: jax.random.randint(k, (n,), 0, n))(jax.random.split(jax.random.key(seed), resamples))
    counts = jax.vmap(lambda d: jnp.bincount(d, length=n))(draws)
    free = _free_eta(model)  # the noise does not move the mean: "noise" has "peer"'s kappa
    with jax.enable_x64(True):
        weights = counts.astype(jnp.float64) / n
        topo = Topology(*(jnp.asarray(t) for t in topo))
        yj, a = jnp.asarray(y), jnp.asarray(anchor, jnp.float64)
        even = jnp.full(n, 1.0 / n, jnp.float64)  # not weakly typed: the fit above compiled for that
        best = _descend(train, iterations, free, yj, a, topo, even, START)
        # One resample after another through the same compiled descent: under vmap every resample
        # would run as many line-search steps as the slowest, and the vmapped loop compiles again.
        kappas = np.array([float(jax.nn.softplus(_descend(train, iterations, free, yj, a, topo, w, best)[1])) for w in weights])
    lo, hi = np.quantile(kappas, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
