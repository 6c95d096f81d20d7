"""One round of every model, in either space: the step that fitting, forecasting and
simulating share.

    x_i <- Exp_{x_i}( eta exp(-t / T) / m_i sum_j w_ij c_ij Log_{x_i}(x_j)
                      + kappa Log_{x_i}(a) + theta Log_{x_i}(x_i^0) + gamma Log_{x_i}(z_g(i)) )

with m_i = sum_j w_ij over the agents i hears that were observed at round t, c_ij the bounded-
confidence weight exp(-(d_ij / eps)^4) (1 without it), a the anchor, x_i^0 the agent's first
value and z_g its group's attractor. In R^d, Exp and Log are + and -: with eta = 1 an agent
jumps to its neighbours' mean (DeGroot), with theta the Friedkin-Johnsen model. On the sphere
they are the engine's geodesic maps, the same as ``hivemind run`` steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hivemind.engine.manifolds import Manifold, get_manifold
from hivemind.theory.fitting.models import Model
from hivemind.theory.fitting.panel import Arrays

# exp(-(d / eps)^CONFIDENCE_POWER): flat inside eps, falling within about eps / 4 of it, as
# Hegselmann-Krause's step but with a gradient.
CONFIDENCE_POWER = 4


def manifold(space: str, dims: int) -> Manifold:
    """The engine's manifold whose points have ``dims`` coordinates."""
    return get_manifold("sphere", dims - 1) if space == "sphere" else get_manifold("euclidean", dims)


def coupling(p: dict, t) -> jax.Array:
    """The peer coupling at round ``t``: eta exp(-t / T), with ``coupling_decay`` = 1 / T (constant
    when the model has no decay)."""
    if "coupling_decay" not in p:
        return p["peer_coupling"]
    return p["peer_coupling"] * jnp.exp(-p["coupling_decay"] * t)


def step(space: str, model: Model, p: dict, a: Arrays, x: jax.Array, valid_t: jax.Array, t) -> jax.Array:
    """Every agent's state after one round from ``x`` (N, D) at round ``t``, under ``model`` with
    the natural parameters ``p`` (the model's free ones: a pull whose coupling is absent is
    off); ``valid_t`` (N,) marks the agents observed at ``t`` (only they
    pull)."""
    m = manifold(space, x.shape[-1])
    n = x.shape[0]
    v = jnp.zeros_like(x)
    if model.peer:
        logs = m.log(x[a.dst], x[a.src])
        w = a.weight * valid_t[a.src]
        # m_i counts every message heard, not the confidence-weighted ones: a message out of
        # confidence does not pull, and no derivative divides by a mass that underflowed.
        mass = jax.ops.segment_sum(w, a.dst, n)
        if model.confidence:
            # Squared distances, not distances: smooth where two agents agree exactly.
            w = w * jnp.exp(-((jnp.sum(logs**2, -1) / p["confidence"] ** 2) ** (CONFIDENCE_POWER // 2)))
        total = jax.ops.segment_sum(w[:, None] * logs, a.dst, n)
        v = v + coupling(p, t) * total / jnp.where(mass > 0, mass, 1.0)[:, None]
    if "anchor_coupling" in p:
        v = v + p["anchor_coupling"] * m.log(x, jnp.broadcast_to(a.anchor, x.shape))
    if model.stubborn:
        v = v + p["stubbornness"] * m.log(x, a.first)
    if "attractor" in p:
        z = p["attractor"][a.group] if model.by else jnp.broadcast_to(p["attractor"], x.shape)
        v = v + p["attractor_coupling"] * m.log(x, z)
    if "attractor_drift" in p:  # R^d: gamma (z - x) as b - gamma x
        b = p["attractor_drift"][a.group] if model.by else jnp.broadcast_to(p["attractor_drift"], x.shape)
        v = v + b - p["attractor_coupling"] * x
    return m.exp(x, v)


def forecasts(space: str, model: Model, p: dict, a: Arrays) -> jax.Array:
    """The one-round-ahead forecast of every observed round from the one before: (T - 1, N, D)."""
    t = jnp.arange(a.y.shape[0] - 1, dtype=a.y.dtype)
    return jax.vmap(lambda x, ok, s: step(space, model, p, a, x, ok, s))(a.y[:-1], a.valid[:-1], t)


def squared_errors(space: str, forecast: jax.Array, observed: jax.Array) -> jax.Array:
    """The squared distance between each forecast and what was observed: (..., N)."""
    if space == "euclidean":
        return jnp.sum((forecast - observed) ** 2, -1)
    # |Log|^2 rather than dist^2: the same number, with a finite derivative where they agree.
    m = manifold(space, forecast.shape[-1])
    return jnp.sum(m.log(observed, forecast) ** 2, -1)
