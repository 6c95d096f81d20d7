"""The manifold protocol and the numerically safe helpers every geometry shares.

A manifold is a small frozen object whose methods are pure, batched functions of
arrays: points and tangent vectors live on the last axis, in ambient coordinates,
and every leading axis broadcasts. Frozen dataclasses hash by value, so a manifold
can be a static argument of ``jax.jit`` without recompiling for an equal one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp

Array = jax.Array


@runtime_checkable
class Manifold(Protocol):
    """What the engine needs from a geometry.

    ``dim`` is the intrinsic dimension n (geomstats' convention): the sphere S^n and
    the hyperboloid H^n store n + 1 ambient numbers per point, R^n stores n.
    """

    name: str
    symbol: str
    dim: int

    @property
    def ambient_dim(self) -> int: ...

    def inner(self, x: Array, u: Array, v: Array) -> Array: ...
    def norm(self, x: Array, v: Array) -> Array: ...
    def exp(self, x: Array, v: Array) -> Array: ...
    def log(self, x: Array, y: Array) -> Array: ...
    def log_pair(self, x: Array, y: Array) -> tuple[Array, Array, Array]: ...
    def dist(self, x: Array, y: Array) -> Array: ...
    def proj(self, x: Array, u: Array) -> Array: ...
    def projx(self, x: Array) -> Array: ...
    def retract(self, x: Array, v: Array) -> Array: ...
    def transport(self, x: Array, y: Array, v: Array) -> Array: ...
    def egrad_to_rgrad(self, x: Array, g: Array) -> Array: ...
    def origin(self, dtype=jnp.float32) -> Array: ...
    def random_point(self, key: Array, shape: tuple[int, ...] = (), dtype=jnp.float32) -> Array: ...
    def random_tangent(self, key: Array, x: Array) -> Array: ...
    def belongs(self, x: Array, atol: float = 1e-5) -> Array: ...


@dataclass(frozen=True)
class ManifoldBase:
    """Shared conveniences; concrete manifolds override the geometry."""

    dim: int

    name = "manifold"
    symbol = "M"

    @property
    def ambient_dim(self) -> int:
        return self.dim + 1

    def norm(self, x: Array, v: Array) -> Array:
        return safe_sqrt(jnp.maximum(self.inner(x, v, v), 0.0))

    def random_tangent(self, key: Array, x: Array) -> Array:
        """A standard Gaussian in the tangent space at ``x`` (ambient Gaussian, projected)."""
        u = jax.random.normal(key, x.shape, dtype=x.dtype)
        return self.proj(x, u)

    def egrad_to_rgrad(self, x: Array, g: Array) -> Array:
        return self.proj(x, g)

    def log_pair(self, x: Array, y: Array) -> tuple[Array, Array, Array]:
        """(Log_x(y), Log_y(x), d(x, y)): both directions of an edge. Geometries override it to share the work."""
        return self.log(x, y), self.log(y, x), self.dist(x, y)

    def __str__(self) -> str:
        return f"{self.name}(dim={self.dim})"


# ---------------------------------------------------------------------------
# Safe branches. ``jnp.where`` alone is not enough under autodiff: both branches
# are differentiated, so the unsafe branch must be fed a harmless input where it
# is not selected (jax-md's safe_mask habit).


def dot(u: Array, v: Array) -> Array:
    return jnp.sum(u * v, axis=-1, keepdims=True)


def safe_sqrt(x: Array) -> Array:
    """sqrt with a finite (zero) gradient at 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def small_angle(dtype) -> float:
    """Below this, the next omitted Taylor term of sin(t)/t or sinh(t)/t is under machine epsilon.

    t^4 / 120 < eps  <=>  t < (120 eps)^(1/4): the branch is exact to working precision, not
    an approximation that trades accuracy for speed.
    """
    eps = float(jnp.finfo(dtype).eps)
    return (120.0 * eps) ** 0.25


def sinc(t: Array) -> Array:
    """sin(t)/t, exact everywhere, with finite derivatives at 0."""
    small = jnp.abs(t) < small_angle(t.dtype)
    ts = jnp.where(small, 1.0, t)
    return jnp.where(small, 1.0 - t * t / 6.0, jnp.sin(ts) / ts)


def sinhc(t: Array) -> Array:
    """sinh(t)/t, exact everywhere, with finite derivatives at 0."""
    small = jnp.abs(t) < small_angle(t.dtype)
    ts = jnp.where(small, 1.0, t)
    return jnp.where(small, 1.0 + t * t / 6.0, jnp.sinh(ts) / ts)


def ratio_or_one(num: Array, den: Array) -> Array:
    """num/den, or 1 where den underflows (the limit of d/sin d and d/sinh d at 0)."""
    ok = den > jnp.finfo(den.dtype).tiny * 1e4
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 1.0)
