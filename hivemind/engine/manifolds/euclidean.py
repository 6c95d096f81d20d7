"""Flat Euclidean space R^n: the case where the theory is exact."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from hivemind.engine.manifolds.base import Array, ManifoldBase, dot, safe_sqrt


@dataclass(frozen=True)
class Euclidean(ManifoldBase):
    """R^n with the standard metric; exp and log are addition and subtraction."""

    name = "euclidean"
    symbol = "R"  # as in R^n

    @property
    def ambient_dim(self) -> int:
        return self.dim

    def inner(self, x: Array, u: Array, v: Array) -> Array:
        return dot(u, v)[..., 0]

    def proj(self, x: Array, u: Array) -> Array:
        return u

    def projx(self, x: Array) -> Array:
        return x

    def dist(self, x: Array, y: Array) -> Array:
        return safe_sqrt(dot(x - y, x - y))[..., 0]

    def exp(self, x: Array, v: Array) -> Array:
        return x + v

    def log(self, x: Array, y: Array) -> Array:
        return y - x

    def log_pair(self, x: Array, y: Array) -> tuple[Array, Array, Array]:
        d = y - x
        return d, -d, safe_sqrt(dot(d, d))[..., 0]

    def retract(self, x: Array, v: Array) -> Array:
        return x + v

    def transport(self, x: Array, y: Array, v: Array) -> Array:
        return v

    def origin(self, dtype=jnp.float32) -> Array:
        return jnp.zeros(self.ambient_dim, dtype)

    def random_point(self, key: Array, shape: tuple[int, ...] = (), dtype=jnp.float32) -> Array:
        """A standard Gaussian point."""
        return jax.random.normal(key, (*shape, self.ambient_dim), dtype=dtype)

    def belongs(self, x: Array, atol: float = 1e-5) -> Array:
        return jnp.all(jnp.isfinite(x), axis=-1) & (x.shape[-1] == self.ambient_dim)
