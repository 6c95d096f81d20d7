"""The Friedkin–Johnsen equilibrium by a sparse solve, differentiated implicitly.

Where the ``gradient`` rule on R^1 with stubbornness theta and inertia m comes to rest
(``energy.drift`` = 0), every agent that is neither an anchor nor fully stubborn satisfies

    sum_j a_ij (z_j - z_i) + g_i (s_i - z_i) + q_i (t_i - z_i) = 0,    g_i = m_i theta_i / (1 - theta_i),

with a_ij the tie weight times the anchor coupling, s the innate opinions (the initial
states) and q_i an extra pull toward t_i (a relaxed stubborn choice). Anchors and agents
with theta = 1 hold their value. On an undirected graph this is one symmetric positive
definite system (L_ff + G + Q) z_f = G s + Q t + A_fF z_F, solved by conjugate gradients
with a Jacobi preconditioner: O(ties) per iteration, nothing of size N x N. With Musco's
stubbornness (theta = 1/(1 + degree), m = degree) g = 1 and z = (I + L)^-1 s.

The solve has a custom VJP: the cotangent of z is carried back by one more solve with the
same (symmetric) operator, lambda = K^-1 zbar, and the parameters' cotangents are those of
-lambda^T K(p) z, so a gradient costs two solves whatever the number of parameters
(implicit differentiation, as in BeeRS; Kühne et al. 2025).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

# Relative residual of the conjugate-gradient solves (float64).
CG_TOL = 1e-11


class Ties(NamedTuple):
    """The graph's ties, each undirected tie once: src, dst (E,) int32 and the node count."""

    src: jax.Array
    dst: jax.Array
    n: int


class System(NamedTuple):
    """The equilibrium's coefficients, the leaves a design differentiates.

    a : (E,) acting tie weights; g : (N,) pull to the innate opinion; q : (N,) extra pull
    toward ``t``; held : (N,) 1 where the agent holds ``value`` (anchors, theta = 1).
    """

    a: jax.Array
    g: jax.Array
    q: jax.Array
    held: jax.Array


def neighbours_sum(ties: Ties, a: jax.Array, v: jax.Array) -> jax.Array:
    """(A v)_i = sum_j a_ij v_j over undirected ties."""
    return jax.ops.segment_sum(a * v[ties.src], ties.dst, ties.n) + jax.ops.segment_sum(a * v[ties.dst], ties.src, ties.n)


def degree(ties: Ties, a: jax.Array) -> jax.Array:
    return jax.ops.segment_sum(a, ties.dst, ties.n) + jax.ops.segment_sum(a, ties.src, ties.n)


def _operator(ties: Ties, p: System, v: jax.Array) -> jax.Array:
    free = 1.0 - p.held
    fv = free * v
    return free * ((degree(ties, p.a) + p.g + p.q) * fv - neighbours_sum(ties, p.a, fv)) + p.held * v


def _diagonal(ties: Ties, p: System) -> jax.Array:
    free = 1.0 - p.held
    return free * (degree(ties, p.a) + p.g + p.q) + p.held


def _cg(ties: Ties, p: System, b: jax.Array) -> jax.Array:
    inv_d = 1.0 / _diagonal(ties, p)
    x, _ = jax.scipy.sparse.linalg.cg(
        lambda v: _operator(ties, p, v), b, x0=inv_d * b, tol=CG_TOL, maxiter=20 * ties.n + 100, M=lambda r: inv_d * r
    )
    return x


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _solve(n: int, src: jax.Array, dst: jax.Array, p: System, b: jax.Array) -> jax.Array:
    return _cg(Ties(src, dst, n), p, b)


def _solve_fwd(n, src, dst, p, b):
    z = _cg(Ties(src, dst, n), p, b)
    return z, (src, dst, p, z)


def _solve_bwd(n, residuals, zbar):
    src, dst, p, z = residuals
    ties = Ties(src, dst, n)
    lam = _cg(ties, p, zbar)  # K is symmetric: K^T lambda = zbar
    _, pull_back = jax.vjp(lambda q: _operator(ties, q, z), p)
    (pbar,) = pull_back(-lam)
    return None, None, pbar, lam


_solve.defvjp(_solve_fwd, _solve_bwd)


def equilibrium(ties: Ties, p: System, s: jax.Array, t: jax.Array, value: jax.Array) -> jax.Array:
    """z (N,): the FJ equilibrium of innate opinions ``s``, targets ``t`` and held values ``value``."""
    free = 1.0 - p.held
    b = free * (p.g * s + p.q * t + neighbours_sum(ties, p.a, p.held * value)) + p.held * value
    return _solve(ties.n, ties.src, ties.dst, p, b)


def residual(ties: Ties, p: System, s: jax.Array, t: jax.Array, value: jax.Array, z: jax.Array) -> jax.Array:
    """max |K z - b| / max |b|: how well ``z`` solves the equilibrium's equations."""
    free = 1.0 - p.held
    b = free * (p.g * s + p.q * t + neighbours_sum(ties, p.a, p.held * value)) + p.held * value
    return jnp.max(jnp.abs(_operator(ties, p, z) - b)) / jnp.maximum(jnp.max(jnp.abs(b)), 1e-300)
