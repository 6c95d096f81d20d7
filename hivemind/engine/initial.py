"""Initial configurations: where the agents start, given the anchor's state."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from hivemind.engine.manifolds import Manifold

Array = jax.Array


def random_cap(manifold: Manifold, key: Array, center: Array, radius, n: int) -> Array:
    """n points in the geodesic ball of ``radius`` around ``center``.

    A uniform direction in the tangent space at ``center`` and a length r = radius *
    U^(1/dim), mapped by Exp: uniform in the tangent ball, which is the geodesic ball
    (for the sphere, radius <= pi).
    """
    k_dir, k_len = jax.random.split(key)
    c = jnp.broadcast_to(center, (n, center.shape[-1]))
    u = manifold.random_tangent(k_dir, c)
    u = u / jnp.maximum(manifold.norm(c, u)[:, None], jnp.finfo(c.dtype).tiny)
    r = radius * jax.random.uniform(k_len, (n, 1), dtype=c.dtype) ** (1.0 / manifold.dim)
    return manifold.exp(c, r * u)


# One compiled program rather than a dozen eager operations, each lowered and compiled on
# its own: 0.9 s of a 4 s second run of the quickstart went there.
@partial(jax.jit, static_argnames=("manifold", "kind", "anchor", "n"))
def initial_states(
    manifold: Manifold, kind: str, key: Array, anchor_state: Array, anchor: int, n: int, spread=1.0, explicit=None
) -> Array:
    """The (n, D) starting configuration, with the anchor's row set to ``anchor_state``
    (``anchor`` = -1: no anchor, ``anchor_state`` only gives the dtype).

    ``kind`` is "random" (the manifold's ``random_point``), "cap" (``random_cap`` of
    radius ``spread`` around the anchor) or "explicit" (the rows of ``explicit``, an array).
    """
    if kind == "random":
        x = manifold.random_point(key, (n,), dtype=anchor_state.dtype)
    elif kind == "cap":
        x = random_cap(manifold, key, anchor_state, spread, n)
    elif kind == "explicit":
        x = manifold.projx(jnp.asarray(explicit, anchor_state.dtype))
    else:
        raise ValueError(f"unknown init kind {kind!r}")
    return x if anchor < 0 else x.at[anchor].set(anchor_state)
