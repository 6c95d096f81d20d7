"""The names a scenario may use for a manifold, a rule and a noise schedule, and the little
geometry a scenario needs to check its own coordinates.

These live here, as plain data, so that reading and validating a scenario never loads jax;
the engine keys its registries by the same names (``tests/scenario`` checks that they agree,
and that ``on_manifold`` agrees with each manifold's ``belongs``).
"""

from __future__ import annotations

import numpy as np

MANIFOLD_KINDS = ("sphere", "hyperbolic", "euclidean")
BUILTIN_RULES = ("gradient", "stochastic", "gossip")
SCHEDULES = ("constant", "inverse", "exponential")


def ambient_dim(kind: str, dim: int) -> int:
    """Coordinates per point: the sphere S^d and the hyperboloid H^d sit in R^(d+1)."""
    return dim if kind == "euclidean" else dim + 1


def on_manifold(kind: str, dim: int, x: np.ndarray, atol: float) -> np.ndarray:
    """Which rows of ``x`` lie on the manifold within ``atol`` (as its ``belongs``, in numpy)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] != ambient_dim(kind, dim):
        return np.zeros(x.shape[:-1], dtype=bool)
    if kind == "sphere":
        return np.abs(np.linalg.norm(x, axis=-1) - 1.0) <= atol
    if kind == "hyperbolic":
        # Relative tolerance: <x,x>_L = -1 is a difference of numbers of size x_0^2.
        q = -(x[..., 0] ** 2) + np.sum(x[..., 1:] ** 2, axis=-1)
        return (np.abs(q + 1.0) <= atol * np.maximum(1.0, x[..., 0] ** 2)) & (x[..., 0] > 0)
    return np.all(np.isfinite(x), axis=-1)


# How a manifold is written in text, as in S^2, H^3, R^4.
SYMBOLS = {"sphere": "S", "hyperbolic": "H", "euclidean": "R"}

# hivemind design's objectives: at the Friedkin-Johnsen equilibrium (opinions on R^1), and after
# a horizon of steps of the scenario's own rule (any manifold). A designed scenario's [design]
# table names one, so that ``hivemind run`` measures it.
EQUILIBRIUM_OBJECTIVES = ("polarization_disagreement", "polarization", "disagreement", "mean_opinion")
HORIZON_OBJECTIVES = ("collapse", "diversity", "time_to_consensus")
