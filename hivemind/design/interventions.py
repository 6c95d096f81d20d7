"""Interventions: the variable a design moves, its budget set with an exact projection, and
how it changes a problem's ``Params``.

========  ==========================================  ==============================================
name      variable and budget set                      rounded (exact) choice
========  ==========================================  ==============================================
innate    new innate opinions y, sum |y - s| <= B,     (continuous)
          in the opinions' box; on a manifold tangent
          moves v with sum |v_i| <= B
stubborn  u in [0, 1]^N, sum u <= B (B agents)         the B largest u: those agents hold their target
edges     tie weights w >= 0, sum w = B (default: the  (continuous)
          ties' total now): reweighting
remove    r in [0, 1]^E, sum r <= B (B ties)           the B largest r: those ties removed
anchor    couplings kappa in [kappa0 - B, kappa0 + B], (continuous)
          >= 0
========  ==========================================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.design import projections
from hivemind.design.problem import DesignError, Params, Problem

INTERVENTIONS = ("innate", "stubborn", "edges", "remove", "anchor")


class Intervention(NamedTuple):
    name: str
    budget: float
    start: jax.Array  # a feasible point: the scenario as it is
    project: Callable[[jax.Array], jax.Array]
    apply: Callable[[Params, jax.Array], Params]
    scale: float  # the size of one coordinate's feasible range: the optimiser's first step is a fraction of it
    candidates: np.ndarray | None = None  # (discrete ones) the agents or ties that may be chosen
    choose: Callable[[Params, np.ndarray], Params] | None = None  # (discrete ones) the exact choice of these indices
    up_to: bool = False  # (discrete ones) the budget is a most (remove up to B ties), not an exact count


def intervention(
    prob: Problem,
    name: str,
    budget: float,
    target: str | float = "auto",
    hold: str = "expressed",
    direction: str = "both",
    anchor: str = "coupling",
) -> Intervention:
    """The intervention ``name`` on ``prob`` with budget ``budget``.

    ``target`` (stubborn): the opinion a chosen agent holds, "own" (its innate opinion) or a
    number; "auto" is the top of the box for ``mean_opinion`` (Gionis et al.'s choice of
    agents fixed at 1) and "own" otherwise. ``hold`` (stubborn, at the equilibrium):
    "expressed" fixes the chosen agents' expressed opinions (theta = 1: Gionis et al.'s
    problem, submodular); "innate" sets their innate opinions to the target, which makes
    ``mean_opinion`` linear in the choice (modular: the exact optimum is a top-B).
    ``direction`` (innate, at the equilibrium): "down" only lowers opinions (x <= 0, as Musco et
    al.'s OptimizeInnate.m), "up" only raises them, "both" either. ``anchor``: what the anchor
    intervention moves, the couplings (within +-B, >= 0) or the positions (each anchor within a
    geodesic distance B of where it is, in the opinions' box at the equilibrium).
    """
    if anchor not in ("coupling", "position"):
        raise DesignError(f"--anchor must be coupling or position, got {anchor!r}")
    if direction not in ("both", "down", "up"):
        raise DesignError(f"--direction must be both, down or up, got {direction!r}")
    if name not in INTERVENTIONS:
        raise DesignError(f"--intervene must be one of {', '.join(INTERVENTIONS)}, got {name!r}")
    if not np.isfinite(budget) or budget < 0:
        raise DesignError(f"--budget must be a finite number >= 0, got {budget:g}")
    base = prob.base
    kind = prob.objective.kind
    free = jnp.asarray(prob.mobile)

    if name == "innate":
        if budget <= 0:
            raise DesignError(f"--budget for innate is the L1 size of the change, > 0; got {budget:g}")
        if kind == "equilibrium":
            lo, hi = prob.box
            scale = min(budget, hi - lo) if np.isfinite(hi - lo) else budget
            if direction == "down":
                hi = base.s
            elif direction == "up":
                lo = base.s
            return Intervention(
                name,
                budget,
                base.s,
                lambda y: projections.l1_ball_box(y, base.s, budget, lo, hi, free),
                lambda p, y: p._replace(s=y),
                scale,
            )
        if direction != "both":
            raise DesignError("--direction: on a manifold the initial states move along tangent vectors, in any direction")
        manifold = prob.engine[0].manifold
        x0 = base.s
        keep = free[:, None]

        def project(v):
            return projections.group_l1_ball(jnp.where(keep, manifold.proj(x0, v), 0.0), budget)

        return Intervention(name, budget, jnp.zeros_like(x0), project, lambda p, v: p._replace(s=manifold.exp(x0, v)), budget)

    if name == "stubborn":
        stubborn_now = np.asarray(prob.theta) >= 1.0
        candidates = np.flatnonzero(prob.mobile & ~stubborn_now)
        k = _count(budget, candidates.size, "agents that are not stubborn already")
        mask = np.zeros(prob.n, bool)
        mask[candidates] = True
        t = _target(prob, target)
        if kind == "horizon" and target not in ("auto", "own"):
            raise DesignError("--target: on a horizon a stubborn agent holds its own initial state (target = own)")
        if kind == "horizon" or hold == "expressed":
            relax = lambda p, u: p._replace(u=u, t=t)
            if kind == "horizon":
                exact = lambda p, idx: p._replace(u=p.u.at[jnp.asarray(idx, jnp.int32)].set(1.0))
            else:
                exact = lambda p, idx: p._replace(held=p.held.at[jnp.asarray(idx, jnp.int32)].set(1.0), t=t)
        elif hold == "innate":
            relax = lambda p, u: p._replace(s=p.s + u * (t - p.s))
            exact = lambda p, idx: p._replace(s=p.s.at[jnp.asarray(idx, jnp.int32)].set(t[jnp.asarray(idx, jnp.int32)]))
        else:
            raise DesignError(f"--hold must be expressed or innate, got {hold!r}")
        return Intervention(
            name,
            float(k),
            jnp.zeros(prob.n),
            lambda u: projections.capped_simplex(u, k, jnp.asarray(mask)),
            relax,
            1.0,
            candidates,
            exact,
        )

    if name == "edges":
        total = float(np.sum(np.asarray(base.w))) if budget == 0 else budget
        if prob.n_ties == 0:
            raise DesignError("--intervene edges: the graph has no ties")
        start = projections.scaled_simplex(base.w, total)
        return Intervention(
            name, total, start, lambda w: projections.scaled_simplex(w, total), lambda p, w: p._replace(w=w), total / prob.n_ties
        )

    if name == "remove":
        k = _count(budget, prob.n_ties, "ties")
        w0 = base.w
        every = jnp.ones(prob.n_ties, bool)
        return Intervention(
            name,
            float(k),
            jnp.zeros(prob.n_ties),
            lambda r: projections.capped_simplex(r, k, every),
            lambda p, r: p._replace(w=w0 * (1.0 - r)),
            1.0,
            np.arange(prob.n_ties),
            lambda p, idx: p._replace(w=p.w.at[jnp.asarray(idx, jnp.int32)].set(0.0)),
            up_to=True,
        )

    # anchor
    if prob.anchors.size == 0:
        raise DesignError("--intervene anchor: this scenario has no anchor")
    if anchor == "position":
        if budget <= 0:
            raise DesignError(f"--budget for an anchor's position is the distance it may move, > 0; got {budget:g}")
        if kind == "equilibrium":
            v0 = base.anchor_value
            lo, hi = jnp.maximum(v0 - budget, prob.box[0]), jnp.minimum(v0 + budget, prob.box[1])
            return Intervention(
                name, budget, v0, lambda v: projections.interval(v, lo, hi), lambda p, v: p._replace(anchor_value=v), budget
            )
        manifold = prob.engine[0].manifold
        idx = jnp.asarray(prob.anchors, jnp.int32)
        at = base.s[idx]

        def within(v):
            v = manifold.proj(at, v)
            size = manifold.norm(at, v)[..., None]
            return v * jnp.minimum(1.0, budget / jnp.maximum(size, 1e-300))

        return Intervention(
            name, budget, jnp.zeros_like(at), within, lambda p, v: p._replace(s=p.s.at[idx].set(manifold.exp(at, v))), budget
        )
    k0 = base.kappa
    lo, hi = jnp.maximum(k0 - budget, 0.0), k0 + budget
    return Intervention(
        name, budget, k0, lambda k: projections.interval(k, lo, hi), lambda p, k: p._replace(kappa=k), max(budget, 1e-3)
    )


def _count(budget: float, available: int, what: str) -> int:
    if budget != int(budget) or budget < 1:
        raise DesignError(f"--budget must be a whole number of {what} >= 1, got {budget:g}")
    if budget > available:
        raise DesignError(f"--budget {int(budget)} is more than the {available} {what} this scenario has")
    return int(budget)


def _target(prob: Problem, target: Any) -> jax.Array:
    s = prob.base.s
    if target == "own" or (target == "auto" and prob.objective.name != "mean_opinion") or prob.objective.kind == "horizon":
        return s if s.ndim == 1 else jnp.zeros(prob.n)
    if target == "auto":
        top = prob.box[1] if np.isfinite(prob.box[1]) else float(jnp.max(s))
        return jnp.full(prob.n, top)
    try:
        return jnp.full(prob.n, float(target))
    except (TypeError, ValueError):
        raise DesignError(f"--target must be own, auto or a number, got {target!r}") from None
