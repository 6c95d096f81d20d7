"""The unit sphere S^n embedded in R^(n+1)."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from hivemind.engine.manifolds.base import Array, ManifoldBase, dot, ratio_or_one, safe_sqrt, sinc


@dataclass(frozen=True)
class Sphere(ManifoldBase):
    """``S^n = {x in R^(n+1) : |x| = 1}`` with the round metric.

    Distances use Kahan's ``d = 2 atan2(|x - y|, |x + y|)``, accurate at 0 (exactly 0 for
    equal points) and near the antipode, where ``arccos(<x, y>)`` loses half its digits.
    At the cut locus (exact antipodes) Log is not unique; it returns the zero vector,
    never NaN.
    """

    name = "sphere"
    symbol = "S"  # as in S^n

    def inner(self, x: Array, u: Array, v: Array) -> Array:
        return dot(u, v)[..., 0]

    def proj(self, x: Array, u: Array) -> Array:
        return u - dot(x, u) * x

    def projx(self, x: Array) -> Array:
        return x / safe_sqrt(dot(x, x))

    def dist(self, x: Array, y: Array) -> Array:
        a = safe_sqrt(dot(x - y, x - y))
        b = safe_sqrt(dot(x + y, x + y))
        return (2.0 * jnp.arctan2(a, b))[..., 0]

    def exp(self, x: Array, v: Array) -> Array:
        t = self.norm(x, v)[..., None]
        y = jnp.cos(t) * x + sinc(t) * v
        return self.projx(y)

    def log(self, x: Array, y: Array) -> Array:
        # u = proj_x(y - x) rather than y - <x,y>x: the same vector, but computed from the
        # small difference y - x, so it is accurate (and exactly 0) for nearby points.
        # The angle atan2(|u|, <x, y>) is as stable as Kahan's formula in ``dist`` and
        # needs two reductions over the coordinates instead of four: this is the
        # innermost computation of every edge update.
        d = y - x
        c = dot(x, d)  # <x, y> - 1 on the sphere
        u = d - c * x
        s = safe_sqrt(dot(u, u))
        return ratio_or_one(jnp.arctan2(s, 1.0 + c), s) * u

    def log_pair(self, x: Array, y: Array) -> tuple[Array, Array, Array]:
        """(Log_x(y), Log_y(x), d): one angle and two coordinate reductions for both directions.

        With d = y - x and e = y + x, Kahan's angle 2 atan2(|d|, |e|) and
        sin(theta) = |d||e|/2 come from sums of squares alone, accurate at 0 and at the
        antipode alike; <x, y> = 1 - |d|^2/2 turns the projections y - <x, y> x and
        x - <x, y> y into d + |d|^2/2 x and |d|^2/2 y - d. No inner product of x with
        anything is left to cancel, and two reductions serve both directions where ``log``
        twice would take four.
        """
        d = y - x
        e = y + x
        dd = dot(d, d)
        a, b = safe_sqrt(dd), safe_sqrt(dot(e, e))
        theta = 2.0 * jnp.arctan2(a, b)
        f = ratio_or_one(theta, 0.5 * a * b)
        half = 0.5 * dd
        return f * (d + half * x), f * (half * y - d), theta[..., 0]

    def retract(self, x: Array, v: Array) -> Array:
        return self.projx(x + v)

    def transport(self, x: Array, y: Array, v: Array) -> Array:
        """Parallel transport of v from T_x to T_y along the minimising geodesic."""
        denom = jnp.maximum(1.0 + dot(x, y), jnp.finfo(x.dtype).eps)
        w = v - dot(y, v) / denom * (x + y)
        return self.proj(y, w)

    def origin(self, dtype=jnp.float32) -> Array:
        return jnp.zeros(self.ambient_dim, dtype).at[0].set(1.0)

    def random_point(self, key: Array, shape: tuple[int, ...] = (), dtype=jnp.float32) -> Array:
        """Uniform on the sphere (a normalised Gaussian)."""
        g = jax.random.normal(key, (*shape, self.ambient_dim), dtype=dtype)
        return self.projx(g)

    def belongs(self, x: Array, atol: float = 1e-5) -> Array:
        return (jnp.abs(jnp.linalg.norm(x, axis=-1) - 1.0) <= atol) & (x.shape[-1] == self.ambient_dim)
