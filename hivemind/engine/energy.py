"""The global loss L(x) = 1/2 sum_{(i,j) in E} w_ij kappa_ij d(x_i, x_j)^2 and its gradient.

Written once in terms of ``dist`` and ``log``, so it holds on every manifold.

Layout: states are (N, D), or agents-first (N, *batch, D) for a batch of runs (seeds)
on the same graph. Agents-first keeps every gather and segment sum a plain one over
axis 0 with wider rows; ``jax.vmap`` over seeds would instead turn them into batched
gathers and scatters, which XLA's CPU backend runs 6x slower at a single seed.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from hivemind.engine.manifolds import Manifold
from hivemind.engine.topology import Topology


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


def pair_distances(manifold: Manifold, states: jax.Array, first: jax.Array, second: jax.Array, fused: bool = False) -> jax.Array:
    """d(x[first[p]], x[second[p]]) for every pair p: (P,) for states (N, D), (P, *batch) agents-first.

    With ``fused`` the C++ kernel of ``hivemind.engine.fused`` computes them (no gradient; the
    records use it), else ``manifold.dist`` over two gathers.
    """
    if fused:
        from hivemind.engine import fused as fused_kernel

        return fused_kernel.distances(manifold.name, states, first, second)
    return manifold.dist(states[first], states[second])


def loss(manifold: Manifold, states: jax.Array, topology: Topology, edge_dist: jax.Array | None = None) -> jax.Array:
    """The global loss of ``states`` (N, D), or of each run in agents-first (N, *batch, D);
    ``edge_dist`` the distances of the messages' endpoints, where the caller has them."""
    d = pair_distances(manifold, states, topology.receivers, topology.senders) if edge_dist is None else edge_dist
    return 0.5 * jnp.sum(_per_edge(topology.loss_weights, d) * d * d, axis=0)


def _pull(manifold: Manifold, bounded: bool, states, senders, receivers, weights, confidence):
    """(force, heard): sum_j w Log_{x_i}(x_j), and sum_j w, over the edges that act.

    With ``bounded`` an edge acts only while its endpoints are closer than
    ``confidence``; the norm of Log_{x_i}(x_j) is their geodesic distance.
    """
    x_i = states[receivers]
    x_j = states[senders]
    log = manifold.log(x_i, x_j)
    w = weights
    if bounded:
        w = _per_edge(weights, log[..., 0]) * (manifold.norm(x_i, log) < confidence).astype(log.dtype)
    msg = _per_edge(w, log) * log
    n = states.shape[0]
    force = jax.ops.segment_sum(msg, receivers, num_segments=n, indices_are_sorted=True)
    edge_w = jnp.broadcast_to(_per_edge(w, log[..., 0]), log.shape[:-1])
    heard = jax.ops.segment_sum(edge_w, receivers, num_segments=n, indices_are_sorted=True)
    return force, heard


def _pull_pairs(manifold: Manifold, bounded: bool, states, senders, receivers, weights, confidence, half):
    """``_pull`` for an undirected graph, each pair's geometry computed once (``manifold.log_pair``).

    Half the gathers and half the transcendental functions; each direction is then
    summed into its receiver, the one side in sorted order, the other not. With
    ``bounded`` both directions act or neither, by the one distance.
    """
    a, b = receivers[half], senders[half]
    w = weights[half]
    log_ab, log_ba, d = manifold.log_pair(states[a], states[b])
    if bounded:
        w = _per_edge(w, d) * (d < confidence).astype(d.dtype)
    n = states.shape[0]
    force = jax.ops.segment_sum(_per_edge(w, log_ab) * log_ab, a, num_segments=n, indices_are_sorted=True)
    force = force + jax.ops.segment_sum(_per_edge(w, log_ba) * log_ba, b, num_segments=n)
    edge_w = jnp.broadcast_to(_per_edge(w, d), d.shape)
    heard = jax.ops.segment_sum(edge_w, a, num_segments=n, indices_are_sorted=True)
    heard = heard + jax.ops.segment_sum(edge_w, b, num_segments=n)
    return force, heard


@functools.cache
def _vmappable_pull(manifold: Manifold, bounded: bool, pairs: bool, fused: bool = False):
    """``_pull`` (or ``_pull_pairs``, or the fused C++ kernel) whose vmap over seeds runs
    agents-first instead of as a batched gather."""
    if fused:
        from hivemind.engine import fused as fused_kernel

        reference = functools.partial(_pull, manifold, bounded)

        def plain(states, senders, receivers, weights, confidence, half):
            return fused_kernel.pull(manifold.name, bounded, reference, states, senders, receivers, weights, confidence)

    elif pairs:
        plain = functools.partial(_pull_pairs, manifold, bounded)
    else:

        def plain(states, senders, receivers, weights, confidence, half):
            return _pull(manifold, bounded, states, senders, receivers, weights, confidence)

    @custom_vmap
    def pull_one(states, senders, receivers, weights, confidence, half):
        return plain(states, senders, receivers, weights, confidence, half)

    @pull_one.def_vmap
    def batched(axis_size, in_batched, states, senders, receivers, weights, confidence, half):
        s_b, snd_b, rcv_b, w_b, c_b, h_b = in_batched
        if snd_b or rcv_b or h_b:  # a different graph per run: nothing to share, batch the generic way
            axes = tuple(0 if b else None for b in in_batched)
            return jax.vmap(plain, in_axes=axes)(states, senders, receivers, weights, confidence, half), (True, True)
        x = states if s_b else jnp.broadcast_to(states, (axis_size, *states.shape))
        w = agents_first(weights) if w_b else weights
        # A bound per run (a swept confidence) broadcasts along the runs axis of the agents-first layout.
        c = confidence if not c_b or axis_size > 1 else confidence[0]
        force, heard = plain(agents_first(x), senders, receivers, w, c, half)
        return (seeds_first(force, axis_size), seeds_first(heard, axis_size)), (True, True)

    return pull_one


def pull_and_heard(
    manifold: Manifold,
    states: jax.Array,
    topology: Topology,
    confidence: jax.Array | None = None,
    pairs: bool = False,
    differentiable: bool = False,
    fused: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``pull`` and the weight each node hears through the edges that act (for "active" inertia).

    With ``fused`` the C++ kernel of ``hivemind.engine.fused`` computes it (the caller checks
    that it can run here); the pure-JAX kernels stay the oracle and the differentiable path.
    """
    bounded = confidence is not None
    c = jnp.asarray(jnp.inf if confidence is None else confidence, states.dtype)
    t = topology
    if pairs and 2 * t.half.shape[-1] != t.senders.shape[-1]:
        # A directed topology has no pairs: the pair kernel would silently pull nobody.
        raise ValueError("pairs=True needs an undirected topology (Topology.half holding one message of every pair)")
    if differentiable:
        # JAX cannot differentiate through a custom_vmap rule in reverse mode; the plain
        # kernel can, and under vmap it batches the generic way (slower, same values).
        if pairs:
            return _pull_pairs(manifold, bounded, states, t.senders, t.receivers, t.weights, c, t.half)
        return _pull(manifold, bounded, states, t.senders, t.receivers, t.weights, c)
    return _vmappable_pull(manifold, bounded, pairs and not fused, fused)(states, t.senders, t.receivers, t.weights, c, t.half)


def pull(
    manifold: Manifold,
    states: jax.Array,
    topology: Topology,
    confidence: jax.Array | None = None,
    pairs: bool = False,
    differentiable: bool = False,
) -> jax.Array:
    """sum_j w_ij kappa_ij Log_{x_i}(x_j) for every node i: the force each node feels.

    For an undirected graph this is minus the Riemannian gradient of ``loss``, since
    grad_x 1/2 d(x, y)^2 = -Log_x(y). One gather, one log and one sorted segment sum:
    nothing of size N x N. Under ``jax.vmap`` over runs it computes agents-first.
    With ``confidence``, only edges whose endpoints are closer than it act (bounded
    confidence). With ``pairs`` (undirected graphs only) each edge's geometry is
    computed once for both directions; equal to float rounding. Its fast batching rule
    is forward mode only; ``differentiable=True`` takes the plain kernel, which
    ``jax.grad`` goes through (to fit the dynamics' parameters through a run).
    """
    return pull_and_heard(manifold, states, topology, confidence, pairs, differentiable)[0]


class Features(NamedTuple):
    """Which terms the dynamics have: static, so a run without them compiles without them.

    stubborn : each agent is also pulled toward its own initial state (Friedkin–Johnsen)
    bounded : edges act only between agents closer than the confidence bound
    active_inertia : m_i = 1 + the weight agent i hears through acting edges, per step
        (with ``bounded`` on R^1 and step size 1: synchronous Hegselmann–Krause)
    pairs : the graph is undirected and each edge's geometry is computed once for
        both directions (``pull``'s pair kernel); a choice of kernel, not of dynamics
    differentiable : the pull without its forward-only batching rule, so that
        ``jax.grad`` goes through a whole run (fitting the dynamics to data)
    fused : the pull by the fused C++ kernel (``hivemind.engine.fused``, run.kernel); a
        choice of kernel, equal to the pure-JAX one to float rounding
    """

    stubborn: bool = False
    bounded: bool = False
    active_inertia: bool = False
    pairs: bool = False
    differentiable: bool = False
    fused: bool = False


# The paper's dynamics: no stubbornness, no confidence bound, fixed inertia.
PLAIN = Features()


def drift(
    manifold: Manifold,
    states: jax.Array,
    topology: Topology,
    features: Features = PLAIN,
    confidence: jax.Array | None = None,
    prejudice: jax.Array | None = None,
) -> jax.Array:
    """The tangent direction every agent moves along, per unit of step size.

    (1 - theta_i) (1/m_i) sum_j w_ij kappa_ij Log_{x_i}(x_j) + theta_i Log_{x_i}(p_i): the
    inertia-scaled pull of the neighbours that act, mixed with the pull toward the
    agent's prejudice p_i (its initial state) by its stubbornness theta_i. Zero at every
    anchor. Without stubbornness or a bound it is exactly (1/m) * ``pull``.
    """
    force, heard = pull_and_heard(
        manifold,
        states,
        topology,
        confidence if features.bounded else None,
        features.pairs,
        features.differentiable,
        features.fused and not features.differentiable,
    )
    inv_m = topology.inv_inertia
    if features.active_inertia:
        inv_m = jnp.where(inv_m > 0, 1.0 / (1.0 + heard), 0.0).astype(states.dtype)
    else:
        inv_m = inv_m.reshape(inv_m.shape + (1,) * (heard.ndim - 1))
    v = inv_m[..., None] * force
    if features.stubborn:
        theta = topology.stubbornness.reshape(topology.stubbornness.shape + (1,) * (v.ndim - 1))
        v = (1.0 - theta) * v + theta * manifold.log(states, prejudice)
    return v


def riemannian_gradient(manifold: Manifold, states: jax.Array, topology: Topology) -> jax.Array:
    """Inertia-preconditioned Riemannian gradient, zero at the anchor."""
    return -topology.inv_inertia[:, None] * pull(manifold, states, topology)


def distance_to_anchors(manifold: Manifold, states: jax.Array, anchors: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(distance to the nearest anchor, which anchor) for every node; states (N, D) or (N, *batch, D).

    ``anchors`` (A,) are node indices; the second result indexes into them.
    """
    if anchors.shape[0] == 0:
        # No anchor (Friedkin-Johnsen with every agent stubborn): no distance to one.
        nan = jnp.full(states.shape[:-1], jnp.nan, states.dtype)
        return nan, jnp.zeros(states.shape[:-1], jnp.int32)
    d = jnp.stack([manifold.dist(states, states[a][None]) for a in _static_or_unrolled(anchors)], axis=0)
    return jnp.min(d, axis=0), jnp.argmin(d, axis=0).astype(jnp.int32)


def _static_or_unrolled(anchors: jax.Array):
    return [anchors[k] for k in range(anchors.shape[0])]


def dispersion(manifold: Manifold, states: jax.Array, sample: jax.Array, fused: bool = False) -> jax.Array:
    """Mean pairwise geodesic distance over a sample of K nodes; states (N, D) or (N, *batch, D).

    With ``fused`` the C++ kernel computes each unordered pair once (distances are symmetric).
    """
    k = sample.shape[0]
    if fused:
        i, j = np.triu_indices(k, 1)
        d = pair_distances(manifold, states, sample[i], sample[j], fused=True)  # (K(K-1)/2, *batch)
        return 2.0 * jnp.sum(d, axis=0) / max(k * (k - 1), 1)
    x = states[sample]
    d = manifold.dist(x[:, None], x[None, :])  # (K, K, *batch)
    return jnp.sum(d, axis=(0, 1)) / max(k * (k - 1), 1)


def clusters(
    manifold: Manifold, states: jax.Array, topology: Topology, tol, edge_dist: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(number of clusters, largest cluster's share of the mobile agents).

    Clusters are the connected components of the graph once edges whose endpoints are
    farther apart than ``tol`` are dropped, counted when they hold at least one mobile
    agent (an anchor nobody is near is not an opinion cluster). Label propagation with
    pointer jumping: each round every node takes the smallest label among itself and
    its close neighbours, then the label of that label's node; O(E) per round, rounds
    until nothing changes. States (N, D) or (N, *batch, D); ``edge_dist`` as in ``loss``.
    """
    n = states.shape[0]
    d = pair_distances(manifold, states, topology.receivers, topology.senders) if edge_dist is None else edge_dist
    close = d <= tol
    batch = d.shape[1:]
    idx = jnp.arange(n, dtype=jnp.int32).reshape((n,) + (1,) * len(batch))
    labels0 = jnp.broadcast_to(idx, (n, *batch))
    big = jnp.int32(n)

    def body(carry):
        labels, _ = carry
        offer = jnp.where(close, labels[topology.senders], big)
        best = jax.ops.segment_min(offer, topology.receivers, num_segments=n, indices_are_sorted=True)
        new = jnp.minimum(labels, best)
        new = jnp.take_along_axis(new, new, axis=0)  # pointer jumping
        return new, jnp.any(new != labels)

    labels, _ = jax.lax.while_loop(lambda c: c[1], body, (labels0, jnp.bool_(True)))
    mobile = (topology.inv_inertia > 0) & (topology.node_mask > 0)
    mobile = jnp.broadcast_to(_per_edge(mobile, labels), labels.shape).astype(states.dtype)
    sizes = _sizes(labels, mobile, n)  # mobile agents per label, (N, *batch)
    count = jnp.sum((labels == idx) & (sizes > 0), axis=0)
    share = jnp.max(sizes, axis=0) / jnp.maximum(jnp.sum(mobile, axis=0), 1.0)
    return count.astype(jnp.int32), share.astype(states.dtype)


def _sizes(labels: jax.Array, weight: jax.Array, n: int) -> jax.Array:
    """The sum of ``weight`` per label, for labels (N, *batch)."""
    flat, w = labels.reshape(n, -1), weight.reshape(n, -1)
    counts = jax.vmap(lambda lab, x: jax.ops.segment_sum(x, lab, num_segments=n), in_axes=1, out_axes=1)(flat, w)
    return counts.reshape(labels.shape)
