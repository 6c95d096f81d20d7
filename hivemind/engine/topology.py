"""A networkx graph turned into the sorted edge arrays the engine scans over.

Convention: a directed edge (u, v) means *v hears u*: information flows along the
edge and v moves toward u. An undirected edge is heard both ways. Anchors (one or
several) have infinite inertia, stored as inverse inertia 0, so they never move
whatever they hear.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from hivemind.scenario.graphs import GraphArrays, graph_arrays  # noqa: F401  (re-exported: the engine's input)


class Topology(NamedTuple):
    """Message edges sorted by receiver, so segment sums can assume sorted indices.

    Attributes
    ----------
    senders, receivers : int32 (E,)
        One entry per message; an undirected edge gives two.
    weights : (E,)
        w_ij * kappa_ij: the edge weight times the anchor coupling on anchor edges.
    pair : int32 (E,)
        Index of the graph edge a message belongs to (both directions of an
        undirected edge share it), so that gossip fires an edge as one event.
    loss_weights : (E,)
        Weight of each message in the global loss; half of ``weights`` for undirected
        graphs because every edge appears twice.
    inv_inertia : (N,)
        1 / m_i, and 0 for every anchor.
    stubbornness : (N,)
        theta_i in [0, 1], the weight of the pull toward the agent's own initial state
        (Friedkin–Johnsen); 0 for anchors.
    node_mask : (N,)
        1 for the graph's nodes, 0 for padding added to spread agents over devices.
    anchors : int32 (A,)
        Indices of the anchors; the first is "the" anchor of single-anchor scenarios.
    sample : int32 (K,)
        A fixed, evenly spaced sample of nodes for the dispersion observable.
    half : int32 (P,)
        For an undirected graph, one message of every pair (ascending, so their
        receivers stay sorted): the pair kernel computes each edge's geometry once
        there and sends it both ways. Empty for a directed graph.
    """

    senders: jax.Array
    receivers: jax.Array
    weights: jax.Array
    pair: jax.Array
    loss_weights: jax.Array
    inv_inertia: jax.Array
    stubbornness: jax.Array
    node_mask: jax.Array
    anchors: jax.Array
    sample: jax.Array
    half: jax.Array

    @property
    def n_nodes(self) -> int:
        return self.inv_inertia.shape[0]

    @property
    def n_messages(self) -> int:
        return self.senders.shape[0]


def _as_anchors(anchors: int | Sequence[int], couplings: float | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    idx = np.atleast_1d(np.asarray(anchors, dtype=np.int64))
    kappa = np.broadcast_to(np.asarray(couplings, dtype=np.float64), idx.shape)
    return idx, kappa


# Agents in the dispersion sample: mean pairwise distance over K(K-1)/2 pairs.
DISPERSION_SAMPLE = 64


def build_topology(
    arrays: GraphArrays,
    anchors: int | Sequence[int],
    couplings: float | Sequence[float] = 1.0,
    dtype=np.float32,
    stubbornness: np.ndarray | float = 0.0,
) -> Topology:
    """Sorted message arrays for the engine.

    Parameters
    ----------
    arrays : GraphArrays
    anchors : int or sequence of int
        Indices (not labels) of the anchor nodes.
    couplings : float or sequence of float
        kappa_a, multiplying the weight of every edge that touches anchor a (an edge
        between two anchors moves nobody).
    stubbornness : float or (N,) array
        theta_i, the Friedkin–Johnsen weight of each agent's own initial state.
    """
    src, dst, w = arrays.src, arrays.dst, arrays.weight
    n = arrays.n_nodes
    idx, kappa_a = _as_anchors(anchors, couplings)
    node_kappa = np.ones(n)
    node_kappa[idx] = kappa_a
    is_anchor = np.zeros(n, dtype=bool)
    is_anchor[idx] = True
    kappa = np.where(is_anchor[src], node_kappa[src], np.where(is_anchor[dst], node_kappa[dst], 1.0))
    w = w * kappa
    pair = np.arange(src.shape[0])
    if arrays.directed:
        senders, receivers, weights, pairs, loss_w = src, dst, w, pair, w
    else:
        senders = np.concatenate([src, dst])
        receivers = np.concatenate([dst, src])
        weights = np.concatenate([w, w])
        pairs = np.concatenate([pair, pair])
        loss_w = 0.5 * weights
    order = np.argsort(receivers, kind="stable")
    if arrays.directed:
        half = np.zeros(0, np.int64)
    else:
        position = np.empty_like(order)
        position[order] = np.arange(order.size)
        half = np.sort(position[: src.size])
    inv_m = 1.0 / arrays.inertia
    inv_m[idx] = 0.0
    theta = np.broadcast_to(np.asarray(stubbornness, np.float64), (n,)).copy()
    theta[idx] = 0.0
    sample = np.unique(np.linspace(0, n - 1, min(n, DISPERSION_SAMPLE)).round().astype(np.int32))
    return Topology(
        senders=np.asarray(senders[order], np.int32),
        receivers=np.asarray(receivers[order], np.int32),
        weights=np.asarray(weights[order], dtype),
        pair=np.asarray(pairs[order], np.int32),
        loss_weights=np.asarray(loss_w[order], dtype),
        inv_inertia=np.asarray(inv_m, dtype),
        stubbornness=np.asarray(theta, dtype),
        node_mask=np.ones(n, dtype),
        anchors=np.asarray(idx, np.int32),
        sample=sample,
        half=np.asarray(half, np.int32),
    )


def grounded_laplacian(arrays: GraphArrays, anchors: int | Sequence[int], couplings: float | Sequence[float] = 1.0) -> np.ndarray:
    """Dense M^-1 L_g: the weighted Laplacian with every anchor's row and column removed.

    Row i of L holds what node i hears: L_ii = sum_j w_ji kappa_ji over the edges into i,
    L_ij = -w_ji kappa_ji. Scaled by 1/m_i (inertia as a preconditioner). Dense, so for
    analysis of small graphs only; the engine never builds it.
    """
    lap = laplacian(arrays, anchors, couplings)
    keep = np.ones(arrays.n_nodes, dtype=bool)
    keep[np.atleast_1d(anchors)] = False
    return lap[np.ix_(keep, keep)]


def laplacian(arrays: GraphArrays, anchors: int | Sequence[int], couplings: float | Sequence[float] = 1.0) -> np.ndarray:
    """Dense M^-1 L over all nodes, anchor rows included (they are what anchors would hear)."""
    topo = build_topology(arrays, anchors, couplings, dtype=np.float64)
    n = arrays.n_nodes
    lap = np.zeros((n, n))
    np.add.at(lap, (topo.receivers, topo.senders), -topo.weights)
    np.add.at(lap, (topo.receivers, topo.receivers), topo.weights)
    return lap / arrays.inertia[:, None]


def reachable_from_anchor(arrays: GraphArrays, anchor: int | Sequence[int]) -> np.ndarray:
    """Which nodes can hear an anchor, directly or through others (edges u -> v: v hears u).

    A breadth-first search on a sparse matrix: linear in the edges and a few bytes per
    edge, where a networkx graph would take hundreds at a million agents.
    """
    n = arrays.n_nodes
    adjacency = scipy.sparse.csr_matrix((np.ones(arrays.src.size, np.int8), (arrays.src, arrays.dst)), shape=(n, n))
    out = np.zeros(n, dtype=bool)
    for a in np.atleast_1d(anchor):
        if not out[a]:
            order = scipy.sparse.csgraph.breadth_first_order(adjacency, a, directed=arrays.directed, return_predecessors=False)
            out[order] = True
    return out
