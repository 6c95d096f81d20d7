"""The global loss L(x) = 1/2 sum_{(i,j) in E} w_ij kappa_ij d(x_i, x_j)^2 and its gradient.

Written once in terms of ``dist`` and ``log``, so it holds on every manifold.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hivemind.manifolds import Manifold
from hivemind.topology import Topology


def loss(manifold: Manifold, states: jax.Array, topology: Topology) -> jax.Array:
    """The global loss of a configuration ``states`` (N, D)."""
    d = manifold.dist(states[topology.receivers], states[topology.senders])
    return 0.5 * jnp.sum(topology.loss_weights * d * d)


def pull(manifold: Manifold, states: jax.Array, topology: Topology) -> jax.Array:
    """sum_j w_ij kappa_ij Log_{x_i}(x_j) for every node i: the force each node feels.

    For an undirected graph this is minus the Riemannian gradient of ``loss``, since
    grad_x 1/2 d(x, y)^2 = -Log_x(y). One gather, one log and one sorted segment sum:
    nothing of size N x N.
    """
    x_i = states[topology.receivers]
    x_j = states[topology.senders]
    msg = topology.weights[:, None] * manifold.log(x_i, x_j)
    return jax.ops.segment_sum(msg, topology.receivers, num_segments=states.shape[0], indices_are_sorted=True)


def riemannian_gradient(manifold: Manifold, states: jax.Array, topology: Topology) -> jax.Array:
    """Inertia-preconditioned Riemannian gradient, zero at the anchor."""
    return -topology.inv_inertia[:, None] * pull(manifold, states, topology)


def distance_to_anchor(manifold: Manifold, states: jax.Array, anchor: jax.Array) -> jax.Array:
    """Geodesic distance of every node to the anchor's state."""
    return manifold.dist(states, states[anchor][None, :])
