"""Hyperbolic space H^n in the hyperboloid (Lorentz) model."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from hivemind.engine.manifolds.base import Array, ManifoldBase, dot, ratio_or_one, safe_sqrt, sinhc


def minkowski(u: Array, v: Array) -> Array:
    """<u, v>_L = -u_0 v_0 + sum_i u_i v_i, keeping the last axis."""
    return dot(u, v) - 2.0 * u[..., :1] * v[..., :1]


@dataclass(frozen=True)
class Hyperbolic(ManifoldBase):
    """``H^n = {x in R^(n+1) : <x, x>_L = -1, x_0 > 0}``, curvature -1.

    Distances use ``d = 2 asinh(|x - y|_L / 2)``, exact and well conditioned near 0, where
    ``arccosh(-<x, y>_L)`` has an infinite derivative and loses half its digits.
    """

    name = "hyperbolic"
    symbol = "H"  # as in H^n

    def inner(self, x: Array, u: Array, v: Array) -> Array:
        return minkowski(u, v)[..., 0]

    def proj(self, x: Array, u: Array) -> Array:
        return u + minkowski(x, u) * x

    def projx(self, x: Array) -> Array:
        space = x[..., 1:]
        x0 = jnp.sqrt(1.0 + dot(space, space))
        return jnp.concatenate([x0, space], axis=-1)

    def dist(self, x: Array, y: Array) -> Array:
        q = minkowski(x - y, x - y)  # = 2 cosh d - 2 = 4 sinh^2(d/2) >= 0
        return (2.0 * jnp.arcsinh(safe_sqrt(jnp.maximum(q, 0.0)) / 2.0))[..., 0]

    def exp(self, x: Array, v: Array) -> Array:
        t = self.norm(x, v)[..., None]
        y = jnp.cosh(t) * x + sinhc(t) * v
        return self.projx(y)

    def log(self, x: Array, y: Array) -> Array:
        u = self.proj(x, y - x)  # |u|_L = sinh d, accurate for nearby points
        d = self.dist(x, y)[..., None]
        return ratio_or_one(d, self.norm(x, u)[..., None]) * u

    def log_pair(self, x: Array, y: Array) -> tuple[Array, Array, Array]:
        """(Log_x(y), Log_y(x), d): one Minkowski reduction and one asinh for both directions.

        With q = |y - x|_L^2 = 4 sinh^2(d/2): <x, y - x>_L = -q/2, so proj_x(y - x) =
        (y - x) - q/2 x (and likewise at y), and its norm sinh d = sqrt(q) sqrt(1 + q/4).
        For nearby points far from the origin q/2 is also more accurate than the inner
        product it replaces, which cancels between coordinates of size x_0.
        """
        diff = y - x
        q = jnp.maximum(minkowski(diff, diff), 0.0)
        r = safe_sqrt(q)
        d = 2.0 * jnp.arcsinh(r / 2.0)
        f = ratio_or_one(d, r * jnp.sqrt(1.0 + q / 4.0))
        half = 0.5 * q
        return f * (diff - half * x), f * (-diff - half * y), d[..., 0]

    def retract(self, x: Array, v: Array) -> Array:
        return self.projx(x + v)

    def transport(self, x: Array, y: Array, v: Array) -> Array:
        """Parallel transport of v from T_x to T_y along the geodesic."""
        w = v + minkowski(y, v) / (1.0 - minkowski(x, y)) * (x + y)
        return self.proj(y, w)

    def egrad_to_rgrad(self, x: Array, g: Array) -> Array:
        # The metric is diag(-1, 1, ..., 1): raise the index, then project.
        g = g.at[..., 0].multiply(-1.0)
        return self.proj(x, g)

    def origin(self, dtype=jnp.float32) -> Array:
        return jnp.zeros(self.ambient_dim, dtype).at[0].set(1.0)

    def random_tangent(self, key: Array, x: Array) -> Array:
        """A standard Gaussian in the tangent space at ``x``.

        Projecting an ambient Gaussian, as on the sphere, would not do: the Minkowski
        projection stretches it by a factor that grows like x_0^2, so far from the origin
        the "unit" noise would be huge and anisotropic. At the origin the tangent space is
        the spatial coordinates with the identity metric; draw there and parallel-transport
        to ``x``, which is an isometry.
        """
        space = jax.random.normal(key, (*x.shape[:-1], self.dim), dtype=x.dtype)
        v = jnp.concatenate([jnp.zeros_like(space[..., :1]), space], axis=-1)
        return self.transport(jnp.broadcast_to(self.origin(x.dtype), x.shape), x, v)

    def random_point(self, key: Array, shape: tuple[int, ...] = (), dtype=jnp.float32) -> Array:
        """Exp at the origin of a standard Gaussian tangent vector (a wrapped normal)."""
        space = jax.random.normal(key, (*shape, self.dim), dtype=dtype)
        v = jnp.concatenate([jnp.zeros((*shape, 1), dtype), space], axis=-1)
        o = jnp.broadcast_to(self.origin(dtype), v.shape)
        return self.exp(o, v)

    def belongs(self, x: Array, atol: float = 1e-5) -> Array:
        # Relative tolerance: <x,x>_L = -1 is a difference of numbers of size x_0^2.
        q = minkowski(x, x)[..., 0]
        scale = jnp.maximum(1.0, x[..., 0] ** 2)
        return (jnp.abs(q + 1.0) <= atol * scale) & (x[..., 0] > 0) & (x.shape[-1] == self.ambient_dim)
