"""Exact Euclidean projections onto the budget sets of the interventions.

Each set is a box cut by one linear (or L1) constraint, so its projection is a clip of the
point shifted by one multiplier tau, and tau is the root of a monotone function of one
variable: found by bisection to the float's resolution (80 halvings of the bracket), the
same answer as the sort-based algorithms (Duchi et al. 2008; Condat 2016) to rounding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Halvings of tau's bracket: 2^-80 of it is below float64's resolution.
BISECTIONS = 80


def _root(f, lo, hi):
    """The tau in [lo, hi] where the decreasing f crosses 0 (lo when f(lo) <= 0)."""

    def body(_, bracket):
        a, b = bracket
        m = 0.5 * (a + b)
        above = f(m) > 0
        return jnp.where(above, m, a), jnp.where(above, b, m)

    a, b = jax.lax.fori_loop(0, BISECTIONS, body, (lo, hi))
    return jnp.where(f(lo) <= 0, lo, b)


def l1_ball_box(v: jax.Array, center: jax.Array, budget, lo, hi, free: jax.Array) -> jax.Array:
    """argmin_y |y - v|^2 over sum_i |y_i - c_i| <= budget, lo <= y <= hi, y_i = c_i where not ``free``.

    KKT: y_i = clip(c_i + soft(v_i - c_i, tau), lo, hi) with tau >= 0 the smallest that meets
    the budget (``center`` must lie in the box).
    """

    def at(tau):
        d = v - center
        step = jnp.sign(d) * jnp.maximum(jnp.abs(d) - tau, 0.0)
        return jnp.where(free, jnp.clip(center + step, lo, hi), center)

    used = lambda tau: jnp.sum(jnp.abs(at(tau) - center)) - budget
    tau = _root(used, jnp.zeros((), v.dtype), jnp.max(jnp.abs(v - center)) + 1.0)
    return at(tau)


def group_l1_ball(v: jax.Array, budget) -> jax.Array:
    """argmin |y - v|^2 over sum_i |y_i|_2 <= budget, rows y_i of (N, D): tangent moves of N agents."""
    norms = jnp.linalg.norm(v, axis=-1)

    def at(tau):
        scale = jnp.where(norms > 0, jnp.maximum(norms - tau, 0.0) / jnp.where(norms > 0, norms, 1.0), 0.0)
        return v * scale[:, None]

    used = lambda tau: jnp.sum(jnp.maximum(norms - tau, 0.0)) - budget
    return at(_root(used, jnp.zeros((), v.dtype), jnp.max(norms) + 1.0))


def capped_simplex(v: jax.Array, k, free: jax.Array) -> jax.Array:
    """argmin |u - v|^2 over 0 <= u <= 1, sum u <= k, u_i = 0 where not ``free``: a relaxed choice of k."""
    at = lambda tau: jnp.where(free, jnp.clip(v - tau, 0.0, 1.0), 0.0)
    used = lambda tau: jnp.sum(at(tau)) - k
    return at(_root(used, jnp.zeros((), v.dtype), jnp.max(jnp.abs(v)) + 1.0))


def scaled_simplex(v: jax.Array, total) -> jax.Array:
    """argmin |w - v|^2 over w >= 0, sum w = total: ties reweighted at a fixed total weight."""
    at = lambda tau: jnp.maximum(v - tau, 0.0)
    used = lambda tau: jnp.sum(at(tau)) - total
    span = jnp.max(jnp.abs(v)) + total + 1.0
    return at(_root(used, jnp.min(v) - total - 1.0, span))


def interval(v: jax.Array, lo, hi) -> jax.Array:
    """The box [lo, hi]: an anchor's coupling within its budget."""
    return jnp.clip(v, lo, hi)
