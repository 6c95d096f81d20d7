"""Independent references for the design tests: the Friedkin–Johnsen equilibrium by a dense
numpy solve of the engine's fixed point, and Musco et al.'s and Gionis et al.'s objectives."""

from __future__ import annotations

import networkx as nx
import numpy as np
import tomli_w


def laplacian(n: int, src, dst, w) -> np.ndarray:
    lap = np.zeros((n, n))
    for i, j, x in zip(src, dst, w, strict=True):
        lap[i, j] -= x
        lap[j, i] -= x
        lap[i, i] += x
        lap[j, j] += x
    return lap


def fj_dense(n, src, dst, w, s, theta, m, fixed=None):
    """The fixed point of x_i += (1 - theta_i)/m_i sum_j w_ij (x_j - x_i) + theta_i (s_i - x_i), with
    the rows of ``fixed`` ({node: value}) held, by one dense solve of drift(x) = 0."""
    lap = laplacian(n, src, dst, w)
    a = -((1 - theta) / m)[:, None] * lap - np.diag(theta)
    b = -theta * s
    for i, v in (fixed or {}).items():
        a[i] = 0.0
        a[i, i] = 1.0
        b[i] = v
    return np.linalg.solve(a, b)


def musco(z, src, dst, w) -> dict:
    pol = float(np.sum((z - z.mean()) ** 2))
    dis = float(np.sum(w * (z[src] - z[dst]) ** 2))
    return {"polarization": pol, "disagreement": dis, "polarization_disagreement": pol + dis, "mean_opinion": float(z.mean())}


def fj_scenario(path, graph: nx.Graph, s: np.ndarray, **extra) -> None:
    """A Musco FJ scenario file (stubbornness 1/(1 + degree), inertia the degree, no anchor) beside its edges and opinions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    edges = path.with_suffix(".edges")
    with open(edges, "w") as f:
        for u, v, d in graph.edges(data=True):
            f.write(f"{u} {v} {d.get('weight', 1.0)!r}\n")
    np.savetxt(path.with_suffix(".txt"), s[:, None])
    # GraphML keeps isolated nodes and the node order: the edge list is for the graphs here, all connected.
    data = {
        "name": path.stem,
        "manifold": {"kind": "euclidean", "dim": 1},
        "graph": {"kind": "file", "path": edges.name},
        "init": {"kind": "explicit", "path": path.with_suffix(".txt").name},
        "agents": {"stubbornness": "inverse_degree", "inertia": "degree"},
        "dynamics": {"rule": "gradient", "step_size": 0.5, "steps": 100},
    }
    for k, v in extra.items():
        data.setdefault(k, {}).update(v)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
