"""``design``: choose an intervention by projected gradient through the dynamics.

The optimiser is optax's SGD with Nesterov momentum, every iterate projected back onto the
budget set exactly (accelerated projected gradient). Its step is 1 / L, with L the largest
curvature at the start (power iteration on Hessian-vector products, ``curvature``), held
for three quarters of the iterations and then brought down by a cosine schedule; a step
that makes the objective not finite, or worse than the start, restarts from the best
iterate with a quarter of the step. Every iterate is feasible, so the design keeps the best
one seen. On the convex problems (innate opinions, ties reweighted at a fixed total, at
Musco et al.'s equilibrium) this reaches the convex optimum (tests: against cvxpy).
Discrete interventions (stubborn agents, removed ties) are optimised relaxed, then rounded
to the B largest coordinates, evaluated exactly, and reported beside greedy, degree,
PageRank and random choices of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hivemind.design import heuristics
from hivemind.design.interventions import Intervention, intervention
from hivemind.design.problem import OBJECTIVES, DesignError, Problem, problem
from hivemind.io.documents import DESIGN_VERSION as SCHEMA_VERSION  # noqa: E402

# The optimiser's defaults: iterations, Nesterov momentum, the share of the iterations at the
# full step, the schedule's last step as a fraction of the first, and power iterations for L.
STEPS = 400
MOMENTUM = 0.9
HELD_SHARE = 0.75
FINAL_FRACTION = 0.01
POWER_ITERATIONS = 20
# Without curvature (a linear objective) the first step moves a coordinate by at most this share of its range.
LINEAR_STEP_SHARE = 0.5
# Below this share of the linear step, the curvature at the start is taken as singular.
SINGULAR_SHARE = 0.01
# Restarts after a step that diverged, each with a quarter of the step.
RESTARTS = 6
# Converged: the best value moved by less than this (relative) over the last tenth of the iterations.
CONVERGED_RTOL = 1e-4


@dataclass(frozen=True)
class Heuristic:
    name: str
    chosen: tuple[int, ...]
    value: float | None
    how: str = ""


@dataclass(frozen=True)
class DesignResult:
    """What a design found, for one budget.

    Attributes
    ----------
    baseline : float
        The objective of the scenario as it is.
    value : float
        The objective with the intervention (rounded and evaluated exactly where discrete).
    relaxed_value : float or None
        The continuous optimum before rounding (discrete interventions), else None.
    variable : array
        The intervention: new innate opinions (N,) or tangent moves (N, D), the relaxed choice
        u (N,) or r (E,), the new tie weights (E,), the couplings (A,) or the anchors' places.
    chosen : tuple of int or None
        The agents (node indices) or ties (edge indices) chosen, for discrete interventions.
    history : array
        The objective at every iteration (relaxed, before rounding).
    heuristics : dict
        Greedy, degree, PageRank and random: what each chose and its value.
    """

    objective: str
    sense: str
    intervention: str
    budget: float
    horizon: int
    baseline: float
    value: float
    relaxed_value: float | None
    variable: np.ndarray
    chosen: tuple[int, ...] | None
    history: np.ndarray
    heuristics: dict[str, Heuristic]
    settings: dict
    converged: bool
    residual: float | None
    problem: Problem = field(repr=False, compare=False)
    intervened: Intervention = field(repr=False, compare=False)  # the budget set and how it applies
    options: dict = field(default_factory=dict)  # target, hold, direction, neutral, anchor: as design() took them

    @property
    def improvement(self) -> float:
        """How far the design moved the objective in its sense (positive: better)."""
        return (self.baseline - self.value) if self.sense == "min" else (self.value - self.baseline)

    def params(self):
        """The problem's ``Params`` with the intervention applied (rounded where discrete)."""
        iv = self.intervened
        if self.chosen is not None:
            return iv.choose(self.problem.base, np.asarray(self.chosen, np.int64))
        return iv.apply(self.problem.base, jnp.asarray(self.variable))

    def to_dict(self) -> dict:
        labels = [str(v) for v in self.problem.scenario.arrays.labels]
        prob = self.problem
        out: dict[str, Any] = {
            "budget": self.budget,
            "baseline": self.baseline,
            "value": self.value,
            "relaxed_value": self.relaxed_value,
            "improvement": self.improvement,
            "converged": self.converged,
            "residual": self.residual,
            "iterations": int(self.history.size),
            "history": [float(v) for v in self.history],
            "heuristics": {
                h.name: {"value": h.value, "chosen": [_label(prob, self.intervention, i, labels) for i in h.chosen], "how": h.how}
                for h in self.heuristics.values()
            },
        }
        out["change"] = _describe(self, labels)
        return out


def design(
    scenario,
    objective: str,
    intervene: str,
    budget: float,
    *,
    horizon: int | None = None,
    sense: str | None = None,
    steps: int = STEPS,
    learning_rate: float | None = None,
    target: str | float = "auto",
    hold: str = "expressed",
    direction: str = "both",
    neutral: float | None = None,
    anchor: str = "coupling",
    seed: int = 0,
    compare: bool = True,
) -> DesignResult:
    """Choose the intervention ``intervene`` within ``budget`` that moves ``objective`` most.

    Parameters
    ----------
    scenario : Scenario
        From ``hivemind.load_scenario``.
    objective : str
        One of ``OBJECTIVES``: at the FJ equilibrium (polarization_disagreement,
        polarization, disagreement, mean_opinion) or after ``horizon`` steps of the
        scenario's own rule (collapse, diversity, time_to_consensus).
    intervene : str
        innate, stubborn, edges, remove or anchor (``hivemind.design.interventions``).
    budget : float
        L1 size of the change (innate), a number of agents (stubborn) or ties (remove), the
        ties' total weight (edges; 0: their total now), the couplings' range (anchor).
    sense : "min" or "max"
        The direction; the objective's own by default (``OBJECTIVES[objective].sense``).
    steps, learning_rate : the optimiser's iterations and first step (default
        ``STEP_FRACTION`` of the budget set's size).
    target, hold : a stubborn agent's target and what it holds (``intervention``).
    direction : innate opinions lowered only ("down", as Musco et al.'s OptimizeInnate.m),
        raised only ("up") or either ("both").
    anchor : what ``intervene="anchor"`` moves: the couplings or the positions.
    neutral : polarization about this opinion instead of the mean (``neutral=0`` with
        ``direction="down"`` is OptimizeInnate.m's program: ``min (s + x)^T (I + L)^-1 (s + x)``
        over ``norm(x, 1) <= B, x <= 0, s + x >= 0``).
    seed : the random heuristic's key (``jax.random.key(seed)``).
    compare : compute the heuristics (discrete interventions).

    Returns
    -------
    DesignResult

    References
    ----------
    Musco, Musco & Tsourakakis (2018), "Minimizing polarization and disagreement in social
    networks", WWW. Gionis, Terzi & Tsaparas (2013), "Opinion maximization in social
    networks", SDM. Kühne et al. (2025), BeeRS, ICML.
    """
    sense = sense or (OBJECTIVES[objective].sense if objective in OBJECTIVES else "min")
    if sense not in ("min", "max"):
        raise DesignError(f"--sense must be min or max, got {sense!r}")
    if steps < 1:
        raise DesignError(f"--steps must be >= 1, got {steps}")
    with jax.enable_x64(True):
        prob = problem(scenario, objective, horizon, neutral)
        iv = intervention(prob, intervene, budget, target, hold, direction, anchor)
        options = dict(target=target, hold=hold, direction=direction, neutral=neutral, anchor=anchor)
        return _optimise(prob, iv, sense, steps, learning_rate, seed, compare, options)


def curvature(f, x: jax.Array, key: jax.Array, iterations: int = POWER_ITERATIONS, *args) -> float:
    """The largest |eigenvalue| of f(., *args)'s Hessian at ``x``: power iteration on Hessian-vector products."""
    hvp_at = jax.jit(lambda v, x, *args: jax.jvp(jax.grad(lambda y: f(y, *args)), (x,), (v,))[1])
    hvp = lambda v: hvp_at(v, x, *args)  # noqa: E731
    v = jax.random.normal(key, x.shape, x.dtype)
    v = v / jnp.linalg.norm(v)
    lam = 0.0
    for _ in range(iterations):
        hv = hvp(v)
        lam = float(jnp.linalg.norm(hv))
        if not np.isfinite(lam) or lam == 0.0:
            return 0.0 if lam == 0.0 else float("inf")
        v = hv / lam
    return lam


def secant_curvature(grad, x: jax.Array, g: jax.Array, step: float, project) -> float:
    """|grad(y) - grad(x)| / |y - x| for y the projected gradient step of size ``step``."""
    y = project(x - step * g)
    dy = float(jnp.linalg.norm(y - x))
    if dy == 0.0:
        return 0.0
    return float(jnp.linalg.norm(grad(y) - g)) / dy


def _optimise(prob: Problem, iv: Intervention, sense: str, steps: int, lr, seed: int, compare: bool, opts: dict) -> DesignResult:
    sign = 1.0 if sense == "min" else -1.0
    # The scenario's numbers go in as arguments, not as constants of the compiled programs: XLA
    # would fold the constants' scatters at compile time (seconds for 10^5 agents).
    loss_of = lambda x, base: sign * prob.value(iv.apply(base, x))  # noqa: E731
    value_and_grad = jax.jit(jax.value_and_grad(loss_of))
    loss = lambda x: value_and_grad(x, prob.base)[0]  # noqa: E731
    grad = lambda x: value_and_grad(x, prob.base)[1]  # noqa: E731
    x0 = iv.project(iv.start)
    k_curv, k_random = jax.random.split(jax.random.key(seed))
    start, g0 = value_and_grad(x0, prob.base)
    start = float(start)
    baseline = float(jax.jit(prob.value)(prob.base))
    big = float(jnp.max(jnp.abs(g0)))
    if lr is None:
        lam = curvature(loss_of, x0, k_curv, POWER_ITERATIONS, prob.base)
        linear = LINEAR_STEP_SHARE * iv.scale / big if big > 0 else 1.0
        lr0 = min(1.0 / lam, linear) if lam > 0 and np.isfinite(lam) else linear
        if lr0 < SINGULAR_SHARE * linear:
            # The curvature at the start can be singular (distances between agents that nearly
            # coincide): take it over a step of the size the design will move instead (a secant).
            lr0 = min(1.0 / max(secant_curvature(grad, x0, g0, SINGULAR_SHARE * linear, iv.project), 1e-300), linear)
    else:
        lr0 = float(lr)

    def stepper(first: float):
        held = int(HELD_SHARE * steps)
        schedule = optax.join_schedules(
            [optax.constant_schedule(first), optax.cosine_decay_schedule(first, max(steps - held, 1), alpha=FINAL_FRACTION)],
            [held],
        )
        opt = optax.sgd(schedule, momentum=MOMENTUM, nesterov=True)

        @jax.jit
        def step(x, state, base):
            v, g = jax.value_and_grad(loss_of)(x, base)
            updates, state = opt.update(g, state, x)
            return iv.project(optax.apply_updates(x, updates)), state, v

        return opt, step

    history: list[float] = []
    best_x, best = x0, start
    first, restarts = lr0, 0
    opt, step = stepper(first)
    x, state = x0, opt.init(x0)
    while len(history) < steps:
        new_x, state, v = step(x, state, prob.base)
        v = float(v)
        if not np.isfinite(v) or v > start + abs(start) + 1e-12:
            if restarts == RESTARTS:
                break
            restarts += 1
            first /= 4.0
            opt, step = stepper(first)
            x, state = best_x, opt.init(best_x)
            continue
        history.append(sign * v)
        if v < best:
            best, best_x = v, x
        x = new_x
    last = float(loss(x))
    if np.isfinite(last) and last < best:
        best, best_x = last, x
    history_arr = np.asarray(history)
    relaxed = sign * best
    tail = history_arr[-max(2, steps // 10) :]
    converged = bool(tail.size and np.ptp(tail) <= CONVERGED_RTOL * max(abs(relaxed), 1e-12))
    chosen, value, found = None, relaxed, {}
    if iv.candidates is not None:
        k = int(iv.budget)
        u = np.asarray(best_x)
        # The largest first; among equal ones (the relaxation left many at 0 where every choice
        # costs), the one the loss's gradient says costs least.
        slope = np.asarray(grad(best_x))
        cand = iv.candidates
        order = cand[np.lexsort((slope[cand], -np.round(u[cand], 9)))]
        chosen = tuple(int(i) for i in order[:k])
        value = heuristics.evaluate(prob, iv, chosen)
        if iv.up_to:
            # "Up to B": the best prefix of the relaxed order, none included.
            for j in range(k):
                v = heuristics.evaluate(prob, iv, order[:j]) if j else baseline
                if sign * v < sign * value:
                    chosen, value = tuple(int(i) for i in order[:j]), v
        if compare:
            found = _heuristics(prob, iv, k, sense, k_random)
    params = iv.choose(prob.base, np.asarray(chosen)) if chosen is not None else iv.apply(prob.base, best_x)
    resid = prob.residual(params) if prob.objective.kind == "equilibrium" else None
    settings = {
        "optimizer": f"optax.sgd(momentum={MOMENTUM}, nesterov=True), projected onto the budget set after every step",
        "schedule": f"1/L for {HELD_SHARE:.0%} of the steps, then optax.cosine_decay_schedule to {FINAL_FRACTION:g} of it",
        "learning_rate": lr0,
        "learning_rate_after_restarts": first,
        "restarts": restarts,
        "steps": steps,
        "rounding": None
        if iv.candidates is None
        else f"the best of the first 0..{int(iv.budget)} in the relaxed order"
        if iv.up_to
        else f"the {int(iv.budget)} largest coordinates (ties: the smallest gradient of the loss)",
        "solver": "conjugate gradients (Jacobi), implicit VJP" if prob.objective.kind == "equilibrium" else "the engine's rule",
    }
    return DesignResult(
        prob.objective.name,
        sense,
        iv.name,
        iv.budget,
        prob.horizon,
        baseline,
        float(value),
        relaxed if iv.candidates is not None else None,
        np.asarray(best_x),
        chosen,
        history_arr,
        found,
        settings,
        converged,
        resid,
        prob,
        iv,
        opts,
    )


def _heuristics(prob: Problem, iv: Intervention, k: int, sense: str, key: jax.Array) -> dict[str, Heuristic]:
    out = {}
    chosen, how = heuristics.greedy(prob, iv, k, sense)
    out["greedy"] = Heuristic("greedy", chosen, heuristics.evaluate(prob, iv, chosen) if chosen else None, how)
    out["degree"] = Heuristic("degree", c := heuristics.degree(prob, iv, k), heuristics.evaluate(prob, iv, c))
    if iv.name == "stubborn":
        out["pagerank"] = Heuristic("pagerank", c := heuristics.pagerank(prob, iv, k), heuristics.evaluate(prob, iv, c))
    c = heuristics.random(iv, k, key)
    out["random"] = Heuristic("random", c, heuristics.evaluate(prob, iv, c), "uniform, from the design's seed")
    return out


def _label(prob: Problem, name: str, i: int, labels: list[str]):
    if name == "remove":
        return [labels[int(prob.ties.src[i])], labels[int(prob.ties.dst[i])]]
    return labels[i]


def _describe(result: DesignResult, labels: list[str]) -> dict:
    """The intervention per agent or tie, as design.json holds it."""
    prob = result.problem
    base = prob.base
    name = result.intervention
    x = np.asarray(result.variable)
    if name == "innate":
        if prob.objective.kind == "equilibrium":
            change = x - np.asarray(base.s)
            moved = np.flatnonzero(np.abs(change) > 1e-12)
            return {
                "kind": "innate opinions",
                "l1": float(np.sum(np.abs(change))),
                "agents": [{"node": labels[i], "before": float(base.s[i]), "after": float(x[i])} for i in moved],
            }
        size = np.linalg.norm(x, axis=-1)
        moved = np.flatnonzero(size > 1e-12)
        return {
            "kind": "initial states moved along tangent vectors",
            "l1": float(np.sum(size)),
            "agents": [{"node": labels[i], "move": float(size[i])} for i in moved],
        }
    if name == "stubborn":
        return {
            "kind": "stubborn agents",
            "hold": result.options.get("hold") if prob.objective.kind == "equilibrium" else "own initial state",
            "chosen": [labels[i] for i in result.chosen],
            "relaxed": {labels[i]: float(x[i]) for i in np.flatnonzero(x > 1e-9)},
        }
    src, dst = np.asarray(prob.ties.src), np.asarray(prob.ties.dst)
    if name == "edges":
        w0 = np.asarray(base.w)
        return {
            "kind": "tie weights at a fixed total",
            "total": float(np.sum(x)),
            "ties": [
                {"source": labels[int(src[e])], "target": labels[int(dst[e])], "before": float(w0[e]), "after": float(x[e])}
                for e in range(x.size)
            ],
        }
    if name == "remove":
        return {
            "kind": "ties removed",
            "chosen": [[labels[int(src[e])], labels[int(dst[e])]] for e in result.chosen],
            "relaxed": [
                {"source": labels[int(src[e])], "target": labels[int(dst[e])], "r": float(x[e])} for e in np.flatnonzero(x > 1e-9)
            ],
        }
    if result.options.get("anchor") == "position":
        moved = np.asarray(result.params().s if prob.objective.kind == "horizon" else result.params().anchor_value)
        before = np.asarray(base.s if prob.objective.kind == "horizon" else base.anchor_value)
        rows = (lambda a, k: a[int(prob.anchors[k])]) if prob.objective.kind == "horizon" else (lambda a, k: a[k])
        return {
            "kind": "anchor positions",
            "anchors": [
                {
                    "node": labels[int(a)],
                    "before": np.atleast_1d(rows(before, k)).tolist(),
                    "after": np.atleast_1d(rows(moved, k)).tolist(),
                }
                for k, a in enumerate(prob.anchors)
            ],
        }
    return {
        "kind": "anchor couplings",
        "anchors": [
            {"node": labels[int(a)], "before": float(base.kappa[k]), "after": float(x[k])} for k, a in enumerate(prob.anchors)
        ],
    }


def design_document(results: list[DesignResult]) -> dict:
    """design.json: the largest budget's design at the top level, every budget under ``budgets``."""
    from hivemind.io.results import versions

    main = results[-1]
    scenario = main.problem.scenario
    top = main.to_dict()
    return {
        "schema_version": SCHEMA_VERSION,
        "objective": main.objective,
        "meaning": OBJECTIVES[main.objective].meaning,
        "sense": main.sense,
        "intervention": main.intervention,
        "horizon": main.horizon or None,
        "options": dict(main.options),
        "scenario_file": scenario.source,
        "scenario_sha256": scenario.sha256,
        "scenario_text": scenario.text,
        "agents": scenario.arrays.n_nodes,
        "ties": int(scenario.arrays.src.size),
        **top,
        "settings": main.settings,
        "budgets": [r.to_dict() for r in results],
        "versions": versions(),
    }
