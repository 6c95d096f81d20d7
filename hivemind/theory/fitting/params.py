"""The fit's parameters, each named once: its constraint, its shape, and what it means.

The table is the model (dynamax's ``ParameterProperties``): fitting, the intervals, the
information criteria and the printed tables read it, so no parameter lives at a position in a
flat vector. A model frees a subset of the table; the others are held at their ``fixed``
value. The optimiser works in unconstrained coordinates (``to_unconstrained`` and
``from_unconstrained``); the intervals and the outputs work in the natural ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Param:
    """One parameter of the fit.

    ``constraint``: ``"positive"`` (softplus), ``"real"`` (none) or ``"point"`` (a point of the
    space: real coordinates in R^d, a direction on the sphere, kept as an unnormalised vector).
    ``shape``: ``"scalar"``, ``"point"`` (one point of the space, or one per group), ``"matrix"``
    (one number per ordered pair of groups: who pulls whom) or ``"kinds"`` (one number per kind
    of tie).
    """

    name: str
    constraint: str
    shape: str
    fixed: float  # its value when a model does not free it
    meaning: str


TABLE: dict[str, Param] = {
    p.name: p
    for p in (
        Param("peer_coupling", "positive", "scalar", 0.0, "pull toward the mean of the agents one hears, at round 0"),
        Param("coupling_decay", "positive", "scalar", 0.0, "rate at which the peer coupling fades, per round (1 / timescale)"),
        Param("anchor_coupling", "positive", "scalar", 0.0, "pull toward the anchor"),
        Param("stubbornness", "positive", "scalar", 0.0, "pull back toward the agent's own first value (Friedkin-Johnsen)"),
        Param("attractor_coupling", "positive", "scalar", 0.0, "pull toward the attractor (of the agent's group, if by group)"),
        Param("attractor", "point", "point", 0.0, "the direction everyone drifts toward when nobody pulls (sphere)"),
        # In R^d the attractor's pull gamma (z - x) is fitted as b - gamma x: the same model,
        # but well posed where the data want a constant drift (gamma -> 0 with gamma z finite).
        Param("attractor_drift", "point", "point", 0.0, "gamma z: the drift toward the attractor z (R^d)"),
        Param("confidence", "positive", "scalar", math.inf, "bounded confidence: messages further than this barely pull"),
        Param("group_coupling", "positive", "matrix", 0.0, "pull on an agent of the row's group toward the column's, at round 0"),
        # Real, not positive: a tie that pushes away (a foe's message) has a negative coupling.
        Param("edge_coupling", "real", "kinds", 0.0, "pull through each kind of tie, at round 0 (negative: pushes away)"),
    )
}


def softplus_inverse(x: float) -> float:
    """The unconstrained value whose softplus is ``x`` > 0."""
    x = max(float(x), 1e-12)
    return x + math.log(-math.expm1(-x)) if x < 30 else x


def size(name: str, dims: int, groups: int, by_group: bool, kinds: int = 1) -> int:
    """How many numbers the parameter holds (its unconstrained length)."""
    if TABLE[name].shape == "matrix":
        return groups * groups
    if TABLE[name].shape == "kinds":
        return kinds
    if TABLE[name].constraint != "point":
        return 1
    return dims * (groups if by_group else 1)


def natural(name: str, raw: jax.Array, space: str, by_group: bool, dims: int) -> jax.Array:
    """The natural value of the parameter ``name`` from its unconstrained ``raw`` numbers."""
    p = TABLE[name]
    if p.shape == "matrix":
        g = math.isqrt(raw.shape[0])
        return jax.nn.softplus(raw).reshape(g, g)
    if p.shape == "kinds":
        return raw
    if p.constraint == "positive":
        return jax.nn.softplus(raw[0])
    if p.constraint == "real":
        return raw[0]
    points = raw.reshape(-1, dims) if by_group else raw.reshape(1, dims)
    if space == "sphere" and name == "attractor":
        points = points / jnp.linalg.norm(points, axis=-1, keepdims=True)
    return points if by_group else points[0]


def unconstrained(name: str, value, space: str) -> np.ndarray:
    """The unconstrained numbers of the natural ``value`` (the inverse of ``natural``)."""
    p = TABLE[name]
    if p.shape == "matrix":
        return np.array([softplus_inverse(v) for v in np.ravel(value)])
    if p.shape == "kinds":
        return np.asarray(value, np.float64).reshape(-1)
    if p.constraint == "positive":
        return np.array([softplus_inverse(value)])
    if p.constraint == "real":
        return np.array([float(value)])
    return np.asarray(value, np.float64).reshape(-1)
