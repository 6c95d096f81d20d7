"""The global loss L(x) = 1/2 sum_{(i,j) in E} w_ij kappa_ij d(x_i, x_j)^2 and its gradient.

Written once in terms of ``dist`` and ``log``, so it holds on every manifold.

Layout: states are (N, D), or agents-first (N, *batch, D) for a batch of runs (seeds)
on the same graph. Agents-first keeps every gather and segment sum a plain one over
axis 0 with wider rows; ``jax.vmap`` over seeds would instead turn them into batched
gathers and scatters, which XLA's CPU backend runs 6x slower at a single seed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from hivemind.manifolds import Manifold
from hivemind.topology import Topology


def agents_first(batch: jax.Array) -> jax.Array:
    """(S, N, ...) -> (N, S, ...); (N, ...) when S = 1, since XLA's CPU gather is 4x slower on rows shaped (1, D) than (D,)."""
    return batch[0] if batch.shape[0] == 1 else jnp.moveaxis(batch, 0, 1)


def seeds_first(out: jax.Array, n_seeds: int, agent_axis: bool = True) -> jax.Array:
    """The inverse of ``agents_first`` for a result with the agent axis (or without it, as a loss)."""
    if n_seeds == 1:
        return out[None]
    return jnp.moveaxis(out, 1, 0) if agent_axis else out


def _per_edge(w: jax.Array, like: jax.Array) -> jax.Array:
    """Edge weights (E,) or (E, *batch) shaped to broadcast against ``like`` (E, *batch, ...)."""
    return w.reshape(w.shape + (1,) * (like.ndim - w.ndim))


def loss(manifold: Manifold, states: jax.Array, topology: Topology) -> jax.Array:
    """The global loss of ``states`` (N, D), or of each run in agents-first (N, *batch, D)."""
    d = manifold.dist(states[topology.receivers], states[topology.senders])
    return 0.5 * jnp.sum(_per_edge(topology.loss_weights, d) * d * d, axis=0)


def _pull(manifold: Manifold, states, senders, receivers, weights):
    x_i = states[receivers]
    x_j = states[senders]
    log = manifold.log(x_i, x_j)
    msg = _per_edge(weights, log) * log
    return jax.ops.segment_sum(msg, receivers, num_segments=states.shape[0], indices_are_sorted=True)


@functools.cache
def _vmappable_pull(manifold: Manifold):
    """``_pull`` whose vmap over seeds runs agents-first instead of as a batched gather."""

    @custom_vmap
    def pull_one(states, senders, receivers, weights):
        return _pull(manifold, states, senders, receivers, weights)

    @pull_one.def_vmap
    def batched(axis_size, in_batched, states, senders, receivers, weights):
        s_b, snd_b, rcv_b, w_b = in_batched
        if snd_b or rcv_b:  # a different graph per run: nothing to share, batch the generic way
            axes = tuple(0 if b else None for b in in_batched)
            return jax.vmap(functools.partial(_pull, manifold), in_axes=axes)(states, senders, receivers, weights), True
        x = states if s_b else jnp.broadcast_to(states, (axis_size, *states.shape))
        w = agents_first(weights) if w_b else weights
        return seeds_first(_pull(manifold, agents_first(x), senders, receivers, w), axis_size), True

    return pull_one


def pull(manifold: Manifold, states: jax.Array, topology: Topology) -> jax.Array:
    """sum_j w_ij kappa_ij Log_{x_i}(x_j) for every node i: the force each node feels.

    For an undirected graph this is minus the Riemannian gradient of ``loss``, since
    grad_x 1/2 d(x, y)^2 = -Log_x(y). One gather, one log and one sorted segment sum:
    nothing of size N x N. Under ``jax.vmap`` over runs it computes agents-first.
    Forward mode only (no ``jax.grad`` through it); differentiate ``loss`` instead.
    """
    return _vmappable_pull(manifold)(states, topology.senders, topology.receivers, topology.weights)


def riemannian_gradient(manifold: Manifold, states: jax.Array, topology: Topology) -> jax.Array:
    """Inertia-preconditioned Riemannian gradient, zero at the anchor."""
    return -topology.inv_inertia[:, None] * pull(manifold, states, topology)


def distance_to_anchor(manifold: Manifold, states: jax.Array, anchor: jax.Array) -> jax.Array:
    """Geodesic distance of every node to the anchor's state; states (N, D) or (N, *batch, D)."""
    return manifold.dist(states, states[anchor][None])
