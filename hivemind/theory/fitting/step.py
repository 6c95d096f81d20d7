"""One round of every model, in either space: the step that fitting, forecasting and
simulating share.

    x_i <- Exp_{x_i}( eta exp(-t / T) / m_i sum_j w_ij c_ij Log_{x_i}(x_j)
                      + kappa Log_{x_i}(a) + theta Log_{x_i}(x_i^0) + gamma Log_{x_i}(z_g(i)) )

with m_i = sum_j |w_ij| over the agents i hears that were observed at round t (a tie of negative
weight pushes away, and the mean stays a mean), c_ij the bounded-confidence weight
exp(-(d_ij / eps)^4) (1 without it), a the anchor, x_i^0 the agent's first value and z_g its
group's attractor. With a coupling per group pair or per kind of tie, eta is eta_{g(i) g(j)} or
eta_{kind(ij)}. In R^d, Exp and Log are + and -: with eta = 1 an agent
jumps to its neighbours' mean (DeGroot), with theta the Friedkin-Johnsen model; the
attractor's pull is written b_g - gamma x (b_g = gamma z_g, see ``params``). On the sphere Exp
and Log are the engine's geodesic maps, the same as ``hivemind run`` steps.

A one-round-ahead forecast starts from observed states, so every Log between data points is a
constant of the fit: ``Pulls`` holds them, computed once per dataset (``pulls``), and each
evaluation of the loss only weighs them and takes one Exp (``advance``). ``step`` computes them
from any states and advances: the same arithmetic, for forecasts many rounds ahead and
simulations.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from hivemind.engine.manifolds import Manifold, get_manifold
from hivemind.theory.fitting.models import Model
from hivemind.theory.fitting.panel import Arrays

# exp(-(d / eps)^CONFIDENCE_POWER): flat inside eps, falling within about eps / 4 of it, as
# Hegselmann-Krause's step but with a gradient.
CONFIDENCE_POWER = 4


class Pulls(NamedTuple):
    """The Logs from each agent's state x (N, D): toward each agent it hears (N, K, D), their
    squared lengths (N, K) and weights (N, K, 0 for an agent not observed), the anchor and its
    own first value (N, D each)."""

    heard: jax.Array
    heard_sq: jax.Array
    heard_weight: jax.Array
    anchor: jax.Array
    first: jax.Array


def manifold(space: str, dims: int) -> Manifold:
    """The engine's manifold whose points have ``dims`` coordinates."""
    return get_manifold("sphere", dims - 1) if space == "sphere" else get_manifold("euclidean", dims)


def fade(p: dict, t):
    """How much of a peer coupling is left at round ``t``: exp(-t / T) with ``coupling_decay`` =
    1 / T, or 1 when the model has no decay."""
    return jnp.exp(-p["coupling_decay"] * t) if "coupling_decay" in p else 1.0


def coupling(p: dict, t) -> jax.Array:
    """The peer coupling at round ``t``: eta exp(-t / T)."""
    return p["peer_coupling"] * fade(p, t)


def pulls(space: str, a: Arrays, x: jax.Array, valid_t: jax.Array) -> Pulls:
    """The Logs from states ``x`` (N, D); ``valid_t`` (N,) marks who was observed (only they pull)."""
    m = manifold(space, x.shape[-1])
    xi = jnp.broadcast_to(x[:, None, :], (*a.heard.shape, x.shape[-1]))
    logs = m.log(xi, x[a.heard])
    return Pulls(
        logs,
        jnp.sum(logs**2, -1),
        a.heard_weight * valid_t[a.heard],
        m.log(x, jnp.broadcast_to(a.anchor, x.shape)),
        m.log(x, a.first),
    )


def advance(space: str, model: Model, p: dict, a: Arrays, x: jax.Array, g: Pulls, t) -> jax.Array:
    """Every agent's state after one round from ``x`` (N, D) at round ``t``, whose Logs are ``g``,
    under ``model`` with the natural parameters ``p`` (the model's free ones: a pull whose
    coupling is absent is off)."""
    m = manifold(space, x.shape[-1])
    v = jnp.zeros_like(x)
    if model.peer:
        # m_i counts every message heard, not the confidence-weighted ones: a message out of
        # confidence does not pull, and no derivative divides by a mass that underflowed.
        mass = jnp.sum(jnp.abs(g.heard_weight), -1)
        w = g.heard_weight
        if model.confidence:
            # Squared distances, not distances: smooth where two agents agree exactly.
            w = w * jnp.exp(-((g.heard_sq / p["confidence"] ** 2) ** (CONFIDENCE_POWER // 2)))
        if "group_coupling" in p:
            # Each message weighed by the coupling of its receiver's group to its sender's.
            w = w * p["group_coupling"][a.group[:, None], a.group[a.heard]] * fade(p, t)
        elif "edge_coupling" in p:
            w = w * p["edge_coupling"][a.heard_kind] * fade(p, t)
        else:
            w = w * coupling(p, t)
        v = v + jnp.einsum("nk,nkd->nd", w, g.heard) / jnp.where(mass > 0, mass, 1.0)[:, None]
    if "anchor_coupling" in p:
        v = v + p["anchor_coupling"] * g.anchor
    if model.stubborn:
        v = v + p["stubbornness"] * g.first
    if "attractor" in p:
        z = p["attractor"][a.group] if model.by else jnp.broadcast_to(p["attractor"], x.shape)
        v = v + p["attractor_coupling"] * m.log(x, z)
    if "attractor_drift" in p:  # R^d: gamma (z - x) as b - gamma x
        b = p["attractor_drift"][a.group] if model.by else jnp.broadcast_to(p["attractor_drift"], x.shape)
        v = v + b - p["attractor_coupling"] * x
    return m.exp(x, v)


def step(space: str, model: Model, p: dict, a: Arrays, x: jax.Array, valid_t: jax.Array, t) -> jax.Array:
    """Every agent's state after one round from any states ``x`` (N, D) at round ``t``."""
    return advance(space, model, p, a, x, pulls(space, a, x, valid_t), t)


def observed_pulls(space: str, a: Arrays) -> Pulls:
    """The Logs from every observed round but the last, (T - 1, ...): constants of a one-step fit."""
    return jax.vmap(lambda x, ok: pulls(space, a, x, ok))(a.y[:-1], a.valid[:-1])


def forecasts(space: str, model: Model, p: dict, a: Arrays, g: Pulls | None = None) -> jax.Array:
    """The one-round-ahead forecast of every observed round from the one before: (T - 1, N, D);
    ``g`` the ``observed_pulls`` when already computed."""
    g = observed_pulls(space, a) if g is None else g
    t = jnp.arange(a.y.shape[0] - 1, dtype=a.y.dtype)
    return jax.vmap(lambda x, gt, s: advance(space, model, p, a, x, gt, s))(a.y[:-1], g, t)


def squared_errors(space: str, forecast: jax.Array, observed: jax.Array) -> jax.Array:
    """The squared distance between each forecast and what was observed: (..., N)."""
    chord = jnp.sum((forecast - observed) ** 2, -1)
    # On the sphere, the geodesic distance from the chord: one reduction over the coordinates
    # instead of a Log's three.
    return chord if space == "euclidean" else _geodesic_sq(chord)


class Gram(NamedTuple):
    """A one-step fit on the sphere in inner products, so that a loss evaluation does not pass
    over the coordinates: the forecast f = cos(r) x + sinc(r) v with v = sum_a c_a B_a, the basis
    B = (the mean Log toward the agents heard, the Log toward the anchor, toward the first value),
    has |v|^2 = c^T G c and <f, y> = cos(r) <x, y> + sinc(r) c^T <B, y>, and the squared chord
    |f - y|^2 = 2 - 2 <f, y>. An attractor z adds Log_x(z) = phi / sin(phi) (z - cos(phi) x),
    which needs <x, z>, <B, z> and <y, z>: three products with z per evaluation."""

    gram: jax.Array  # (T - 1, N, 3, 3)
    toward: jax.Array  # (T - 1, N, 3): <B_a, y[t + 1]>
    xy: jax.Array  # (T - 1, N): <x, y[t + 1]>
    basis: jax.Array  # (T - 1, N, 3, D): B itself, for the attractor's products
    x: jax.Array  # (T - 1, N, D)
    y: jax.Array  # (T - 1, N, D): the observed next rounds


def gram(a: Arrays, g: Pulls) -> Gram:
    """The inner products of the observed Logs ``g`` (``observed_pulls``) on the sphere."""
    mass = jnp.sum(jnp.abs(g.heard_weight), -1)
    mean = jnp.einsum("tnk,tnkd->tnd", g.heard_weight, g.heard) / jnp.where(mass > 0, mass, 1.0)[..., None]
    basis = jnp.stack([mean, g.anchor, g.first], axis=2)
    x, y = a.y[:-1], a.y[1:]
    return Gram(
        jnp.einsum("tnad,tnbd->tnab", basis, basis),
        jnp.einsum("tnad,tnd->tna", basis, y),
        jnp.sum(x * y, -1),
        basis,
        x,
        y,
    )


def _geodesic_sq(chord_sq: jax.Array) -> jax.Array:
    # d = 2 arcsin(c / 2) from the chord c, in c^2 with its series near 0 so that the derivative
    # is finite where forecast and observation agree.
    small = chord_sq < 1e-8
    safe = jnp.where(small, 1e-8, chord_sq)
    return jnp.where(small, chord_sq + chord_sq**2 / 12.0, 4.0 * jnp.arcsin(jnp.minimum(jnp.sqrt(safe) / 2.0, 1.0)) ** 2)


def gram_squared_errors(model: Model, p: dict, a: Arrays, h: Gram) -> jax.Array:
    """``squared_errors`` of ``forecasts`` on the sphere, from the inner products ``h``: (T - 1, N).
    Not for bounded confidence, group or tie-kind couplings, whose weights differ message by message."""
    t = jnp.arange(h.xy.shape[0], dtype=h.xy.dtype)[:, None]
    zero = jnp.zeros_like(h.xy)
    c = jnp.stack(
        [
            coupling(p, t) * jnp.ones_like(h.xy) if model.peer else zero,
            p["anchor_coupling"] * jnp.ones_like(h.xy) if "anchor_coupling" in p else zero,
            p["stubbornness"] * jnp.ones_like(h.xy) if model.stubborn else zero,
        ],
        axis=-1,
    )  # (T - 1, N, 3)
    vv = jnp.einsum("tna,tnab,tnb->tn", c, h.gram, c)
    vy = jnp.einsum("tna,tna->tn", c, h.toward)
    if "attractor" in p:
        # Products with every group's point as matrix products (BLAS), then each agent's own.
        zs = p["attractor"] if model.by else p["attractor"][None, :]  # (G, D)
        own = a.group if model.by else jnp.zeros_like(a.group)
        pick = jax.nn.one_hot(own, zs.shape[0], dtype=h.xy.dtype)  # (N, G)
        xz = jnp.einsum("tng,ng->tn", h.x @ zs.T, pick)
        bz = jnp.einsum("tnag,ng->tna", h.basis @ zs.T, pick)
        yz = jnp.einsum("tng,ng->tn", h.y @ zs.T, pick)
        cos = jnp.clip(xz, -1.0, 1.0)
        # phi / sin(phi) via atan2 of the tangent part's length: finite at phi = 0.
        sin = jnp.sqrt(jnp.maximum(1.0 - cos**2, 1e-30))
        phi = jnp.arctan2(sin, cos)
        k = p["attractor_coupling"] * phi / sin  # v += k (z - cos x)
        vv = vv + 2.0 * k * jnp.einsum("tna,tna->tn", c, bz) + (p["attractor_coupling"] * phi) ** 2
        vy = vy + k * (yz - cos * h.xy)
    r = jnp.sqrt(jnp.maximum(vv, 1e-300))
    fy = jnp.cos(r) * h.xy + jnp.where(vv > 1e-300, jnp.sin(r) / r, 1.0) * vy
    return _geodesic_sq(jnp.maximum(2.0 - 2.0 * fy, 0.0))
