"""The baselines every forecast model is scored against, and the distances and skills they share."""

from __future__ import annotations

import numpy as np


def unit_rows(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norm > 1e-12, norm, 1.0)


def geodesic_distance(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return 2.0 * np.arcsin(np.clip(np.linalg.norm(u - v, axis=-1) / 2.0, 0.0, 1.0))


def baselines(y: np.ndarray, anchor: np.ndarray | None, src: np.ndarray, dst: np.ndarray, origins) -> dict:
    """Each baseline's forecast of y[t + 1] from y[t], t in ``origins``: name -> (len, N, D).

    ``neighbours`` is the normalised mean of an agent's in-neighbours (an edge src -> dst:
    dst hears src); an agent nobody talks to keeps its state.
    """
    y = np.asarray(y, np.float64)
    x = y[np.asarray(origins)]
    n = y.shape[1]
    heard = np.zeros((n, n))
    heard[np.asarray(dst), np.asarray(src)] = 1.0
    alone = heard.sum(1) == 0
    neighbours = unit_rows(np.einsum("ij,tjd->tid", heard, x))
    neighbours[:, alone] = x[:, alone]
    out = {
        "persistence": x,
        "neighbours": neighbours,
        "centroid": np.broadcast_to(unit_rows(x.mean(1, keepdims=True)), x.shape),
    }
    if anchor is not None:
        out["anchor"] = np.broadcast_to(np.asarray(anchor, np.float64), x.shape)
    return out


def mean_pairwise(x: np.ndarray) -> np.ndarray:
    """Mean great-circle distance over agent pairs, per leading index: (T, N, D) -> (T,)."""
    n = x.shape[1]
    i, j = np.triu_indices(n, k=1)
    return geodesic_distance(x[:, i], x[:, j]).mean(1) if n > 1 else np.zeros(x.shape[0])


def skill_score(mse: float, baseline: float) -> float | None:
    return None if baseline <= 0 else 1.0 - mse / baseline
