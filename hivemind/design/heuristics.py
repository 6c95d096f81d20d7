"""The choices a gradient design is judged against: greedy (Gionis et al. 2013), degree,
PageRank and random, for the discrete interventions (B stubborn agents, B removed ties).

Greedy adds, B times, the candidate whose choice improves the objective most. At the FJ
equilibrium with expressed opinions held it needs no solve per candidate: fixing agent i at
t_i moves the equilibrium to z + (t_i - z_i) h_i / h_ii, with h_i the i-th column of
H = K^-1, and the inverse of the system with i held is H - h_i h_i^T / h_ii (a rank-one
update; Sherman-Morrison), so every candidate's polarization, disagreement and mean come
from a few products with H: O(N (N + E)) a round instead of N solves. Elsewhere (a
horizon, removed ties, innate opinions set) greedy evaluates every candidate, vmapped.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from hivemind.design.interventions import Intervention
from hivemind.design.problem import Params, Problem

# The rank-one greedy keeps H = K^-1 dense: N^2 floats (5,000 agents: 200 MB).
GREEDY_DENSE_MAX = 5000
# Greedy by evaluation: at most this many objective evaluations (candidates x rounds).
GREEDY_EVALUATIONS_MAX = 200_000


class Choice(NamedTuple):
    """A heuristic's choice: the indices chosen (agents or ties) and the objective there."""

    chosen: tuple[int, ...]
    value: float


def evaluate(prob: Problem, iv: Intervention, chosen) -> float:
    return float(prob.value(iv.choose(prob.base, np.asarray(chosen, np.int64))))


def degree(prob: Problem, iv: Intervention, k: int) -> tuple[int, ...]:
    """The k candidates of largest weighted degree (agents), or the k heaviest ties."""
    if iv.name == "remove":
        return tuple(int(i) for i in _top(np.asarray(prob.base.w), iv.candidates, k))
    return tuple(int(i) for i in _top(np.asarray(prob.heard(prob.base)), iv.candidates, k))


def pagerank(prob: Problem, iv: Intervention, k: int) -> tuple[int, ...]:
    """The k candidates of largest PageRank on the weighted graph (networkx, damping 0.85)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(prob.n))
    src, dst, w = np.asarray(prob.ties.src), np.asarray(prob.ties.dst), np.asarray(prob.base.w)
    graph.add_weighted_edges_from(zip(src.tolist(), dst.tolist(), w.tolist(), strict=True))
    rank = nx.pagerank(graph, weight="weight")
    score = np.asarray([rank[i] for i in range(prob.n)])
    return tuple(int(i) for i in _top(score, iv.candidates, k))


def random(iv: Intervention, k: int, key: jax.Array) -> tuple[int, ...]:
    """k candidates drawn uniformly without replacement from ``key``."""
    picked = jax.random.choice(key, iv.candidates.size, (k,), replace=False)
    return tuple(int(iv.candidates[i]) for i in np.asarray(picked))


def _top(score: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-score[candidates], kind="stable")
    return candidates[order[:k]]


def greedy(prob: Problem, iv: Intervention, k: int, sense: str) -> tuple[tuple[int, ...], str]:
    """Greedy's k choices and how they were computed ("rank-one updates" or "evaluations")."""
    if prob.objective.kind == "equilibrium" and iv.name == "stubborn" and prob.n <= GREEDY_DENSE_MAX:
        if float(jnp.sum(iv.choose(prob.base, iv.candidates[:1]).held)) > 0:  # expressed opinions held
            return _greedy_rank_one(prob, iv, k, sense), "rank-one updates of K^-1"
    if iv.candidates.size * k > GREEDY_EVALUATIONS_MAX:
        return (), f"skipped: {iv.candidates.size} candidates x {k} rounds is more than {GREEDY_EVALUATIONS_MAX:,} evaluations"
    return _greedy_by_evaluation(prob, iv, k, sense), "one evaluation per candidate per round"


def _greedy_by_evaluation(prob: Problem, iv: Intervention, k: int, sense: str) -> tuple[int, ...]:
    sign = 1.0 if sense == "min" else -1.0
    chosen: list[int] = []
    p = prob.base

    @jax.jit
    def values(p: Params, idx: jax.Array) -> jax.Array:
        return jax.lax.map(lambda i: prob.value(iv.choose(p, i[None])), idx, batch_size=32)

    for _ in range(k):
        left = np.setdiff1d(iv.candidates, chosen)
        v = sign * np.asarray(values(p, jnp.asarray(left, jnp.int32)))
        best = int(left[int(np.argmin(v))])
        chosen.append(best)
        p = iv.choose(p, np.asarray([best]))
    return tuple(chosen)


def _greedy_rank_one(prob: Problem, iv: Intervention, k: int, sense: str) -> tuple[int, ...]:
    """Gionis et al.'s greedy at the FJ equilibrium by rank-one updates of H = K^-1 (see the module)."""
    sys, value = prob.system(prob.base)
    n = prob.n
    src, dst = np.asarray(prob.ties.src), np.asarray(prob.ties.dst)
    a, g, held = np.asarray(sys.a), np.asarray(sys.g), np.asarray(sys.held)
    free = 1.0 - held
    lap = np.zeros((n, n))
    np.add.at(lap, (src, dst), -a)
    np.add.at(lap, (dst, src), -a)
    lap[np.diag_indices(n)] += np.bincount(src, a, n) + np.bincount(dst, a, n)
    k_full = free[:, None] * (lap + np.diag(g)) * free[None, :] + np.diag(held)
    h = np.linalg.inv(k_full)
    s, val = np.asarray(prob.base.s), np.asarray(value)
    adj_held = -(lap * free[:, None]) @ (held * val)
    b = free * (g * s + adj_held) + held * val
    z = h @ b
    t = np.asarray(iv.choose(prob.base, iv.candidates[:1]).t)
    name = prob.objective.name
    sign = 1.0 if sense == "min" else -1.0
    left = np.zeros(n, bool)
    left[iv.candidates] = True
    chosen: list[int] = []
    for _ in range(k):
        diag = np.diag(h).copy()
        alpha = np.where(left, (t - z) / np.where(left, diag, 1.0), 0.0)
        if name == "mean_opinion":
            score = np.mean(z) + alpha * h.sum(axis=0) / n
        else:
            zc = z - z.mean()
            hc = h - h.mean(axis=0, keepdims=True)
            pol = zc @ zc + 2 * alpha * (zc @ hc) + alpha**2 * np.sum(hc * hc, axis=0)
            dz = z[src] - z[dst]
            dh = h[src] - h[dst]
            dis = np.sum(a * dz**2) + 2 * alpha * ((a * dz) @ dh) + alpha**2 * (a @ (dh * dh))
            score = {"polarization": pol, "disagreement": dis, "polarization_disagreement": pol + dis}[name]
        score = np.where(left, sign * score, np.inf)
        i = int(np.argmin(score))
        z = z + alpha[i] * h[:, i]
        col = h[:, i].copy()
        h = h - np.outer(col, h[i, :]) / col[i]
        h[i, i] = 1.0
        left[i] = False
        chosen.append(i)
    return tuple(chosen)
