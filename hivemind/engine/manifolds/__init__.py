"""Riemannian manifolds as bundles of pure, batched functions.

Adding a geometry means adding one module here and one entry in ``MANIFOLDS``.
"""

from __future__ import annotations

from hivemind.engine.manifolds.base import Manifold
from hivemind.engine.manifolds.euclidean import Euclidean
from hivemind.engine.manifolds.hyperbolic import Hyperbolic
from hivemind.engine.manifolds.sphere import Sphere

MANIFOLDS: dict[str, type] = {"sphere": Sphere, "hyperbolic": Hyperbolic, "euclidean": Euclidean}


def get_manifold(kind: str, dim: int) -> Manifold:
    """The manifold called ``kind`` ("sphere", "hyperbolic", "euclidean") of intrinsic dimension ``dim``."""
    try:
        cls = MANIFOLDS[kind]
    except KeyError:
        raise ValueError(f"unknown manifold {kind!r}; expected one of {sorted(MANIFOLDS)}") from None
    return cls(dim=dim)


__all__ = ["Manifold", "Sphere", "Hyperbolic", "Euclidean", "MANIFOLDS", "get_manifold"]
