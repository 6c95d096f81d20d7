"""A design problem: a scenario, an objective, and the numbers an intervention may move.

Two kinds of objective. At the **equilibrium** (Friedkin–Johnsen on a line: Musco et al.'s
polarization and disagreement, Gionis et al.'s total opinion) the value is a function of the
fixed point, found by one sparse solve (``design.equilibrium``). After a **horizon** of T
steps of the scenario's own rule on its own manifold (the collapse paper's anchor, bounded
confidence, the sphere) the value is a function of where the engine's run is then: the same
``kernel.init_run``/``step_run`` that ``hivemind run`` takes, differentiated through.

Everything an intervention moves is a leaf of ``Params``; ``Problem.value(params)`` is a pure
function of it, so ``jax.grad`` gives the gradient of every intervention alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.design.equilibrium import System, Ties, degree, equilibrium, residual
from hivemind.errors import InputError
from hivemind.theory.opinions import opinion_objective


class DesignError(InputError, ValueError):
    """A design that cannot be made as asked: ``str(e)`` is one line naming the option or the key."""


class Objective(NamedTuple):
    name: str
    kind: str  # "equilibrium" or "horizon"
    sense: str  # "min" or "max": the direction the design moves it by default
    meaning: str


OBJECTIVES = {
    o.name: o
    for o in (
        Objective(
            "polarization_disagreement",
            "equilibrium",
            "min",
            "P(z) + D(z) at the FJ equilibrium z (Musco et al. 2018): s_bar^T (I + L)^-1 s_bar in their model",
        ),
        Objective("polarization", "equilibrium", "min", "P(z) = sum_i (z_i - mean z)^2 at the FJ equilibrium"),
        Objective("disagreement", "equilibrium", "min", "D(z) = sum over ties w_ij (z_i - z_j)^2 at the FJ equilibrium"),
        Objective("mean_opinion", "equilibrium", "max", "the mean expressed opinion at the FJ equilibrium (Gionis et al. 2013)"),
        Objective("collapse", "horizon", "max", "the mean geodesic distance of the agents to the nearest anchor after T steps"),
        Objective(
            "diversity", "horizon", "max", "the mean pairwise geodesic distance of the engine's dispersion sample after T steps"
        ),
        Objective(
            "time_to_consensus",
            "horizon",
            "min",
            "sum over t = 1..T of dispersion(t) / dispersion(0): the area under the dispersion curve, in steps; "
            "1 / (e^r - 1) ~ 1/r for an approach at rate r",
        ),
    )
}


class Params(NamedTuple):
    """What an intervention may move: every leaf a float array.

    s : (N,) innate opinions (equilibrium) or (N, D) initial states (horizon)
    w : (E,) tie weights, each undirected tie once, in the graph's order
    kappa : (A,) anchor couplings
    anchor_value : (A,) anchors' opinions (equilibrium; the horizon's are rows of ``s``)
    u : (N,) relaxed stubborn choice in [0, 1]
    t : (N,) the opinion a stubborn agent holds (equilibrium)
    held : (N,) 1 where an agent holds ``t`` exactly (a rounded stubborn choice)
    """

    s: jax.Array
    w: jax.Array
    kappa: jax.Array
    anchor_value: jax.Array
    u: jax.Array
    t: jax.Array
    held: jax.Array


# A relaxed stubborn agent u in [0, 1] is pulled to its target t by D u / (1 - u + RELAXED_EPS),
# D its own diagonal (the weight it hears plus g): its equation becomes, to O(eps), the convex
# combination (1 - u) (its FJ update) + u t, so u is the share of the target in its opinion
# (at u = 1 within 0.1 % of holding it; rounded, it holds it).
RELAXED_EPS = 1e-3


@dataclass(frozen=True, eq=False)
class Problem:
    """A scenario made into ``value(params)``; build it with ``problem``."""

    scenario: Any
    objective: Objective
    horizon: int
    base: Params
    ties: Ties
    anchors: np.ndarray  # (A,) node indices
    tie_anchor: np.ndarray  # (E,) the anchor whose coupling multiplies the tie, or -1
    inertia_degree: bool  # m = the weight a node hears (agents.inertia = "degree")
    theta_inverse_degree: bool  # theta = 1 / (1 + that weight)
    inertia: np.ndarray  # (N,) m as given (when not from the degree)
    theta: np.ndarray  # (N,) theta as given (when not from the degree)
    mobile: np.ndarray  # (N,) bool: not an anchor
    box: tuple[float, float]  # the opinions' domain (equilibrium): [0, 1] where they are given in it
    engine: Any = None  # (config, hyper, topology, keys) of a horizon objective
    neutral: float | None = None  # polarization about this opinion instead of the mean

    @property
    def n(self) -> int:
        return self.ties.n

    @property
    def n_ties(self) -> int:
        return int(self.ties.src.shape[0])

    def acting(self, p: Params) -> jax.Array:
        """w_ij kappa_ij: the weight each tie acts with (the anchor's coupling on its ties)."""
        ta = jnp.asarray(self.tie_anchor)
        if self.anchors.size == 0:
            return p.w
        return p.w * jnp.where(ta >= 0, p.kappa[jnp.maximum(ta, 0)], 1.0)

    def heard(self, p: Params) -> jax.Array:
        """The weight each node hears (raw tie weights: what agents.inertia = "degree" takes)."""
        return degree(self.ties, p.w)

    # --- the equilibrium ------------------------------------------------------------------

    def system(self, p: Params) -> tuple[System, jax.Array]:
        """The equilibrium's coefficients and the values held ones keep."""
        n = self.n
        d = self.heard(p)
        is_anchor = jnp.zeros(n).at[jnp.asarray(self.anchors, jnp.int32)].set(1.0) if self.anchors.size else jnp.zeros(n)
        if self.theta_inverse_degree and self.inertia_degree:
            g = jnp.ones(n)  # m theta / (1 - theta) = d / d: Musco's (I + L) z = s
            held0 = jnp.zeros(n)
        else:
            m = jnp.where(d > 0, d, 1.0) if self.inertia_degree else jnp.asarray(self.inertia)
            if self.theta_inverse_degree:
                ratio, held0 = 1.0 / jnp.maximum(d, 1e-12), jnp.zeros(n)
            else:
                th = jnp.asarray(self.theta)
                held0 = (th >= 1.0).astype(jnp.float64)
                ratio = th / jnp.where(th >= 1.0, 1.0, 1.0 - th)
            g = m * ratio
        held = jnp.clip(is_anchor + held0 + p.held, 0.0, 1.0)
        value = jnp.where(p.held > 0, p.t, p.s)
        if self.anchors.size:
            value = value.at[jnp.asarray(self.anchors, jnp.int32)].set(p.anchor_value)
        a = self.acting(p)
        own = degree(self.ties, a) + g
        pull = own * p.u / (1.0 - p.u + RELAXED_EPS)
        return System(a, (1.0 - held) * g, (1.0 - held) * pull, held), value

    def drift_scale(self, p: Params) -> jax.Array:
        """(1 - theta_i) / m_i: the engine's drift is this times the equilibrium's residual
        sum_j a_ij (x_j - x_i) + g_i (s_i - x_i) (``energy.drift``, with g = m theta / (1 - theta))."""
        d = self.heard(p)
        m = jnp.where(d > 0, d, 1.0) if self.inertia_degree else jnp.asarray(self.inertia)
        theta = 1.0 / (1.0 + d) if self.theta_inverse_degree else jnp.asarray(self.theta)
        return (1.0 - theta) / m

    def fixed_point(self, p: Params) -> jax.Array:
        """z (N,): the FJ equilibrium of ``p``."""
        sys, value = self.system(p)
        return equilibrium(self.ties, sys, p.s, p.t, value)

    def residual(self, p: Params) -> float:
        sys, value = self.system(p)
        return float(residual(self.ties, sys, p.s, p.t, value, self.fixed_point(p)))

    # --- the horizon ----------------------------------------------------------------------

    def final_states(self, p: Params) -> tuple[jax.Array, jax.Array]:
        """Every seed's states after T steps (S, N, D) and the dispersion at every step (S, T + 1)."""
        from hivemind.engine import energy, kernel

        config, hyper, topology, keys = self.engine
        a = self.acting(p)
        weights = a[topology.pair]
        inv_m = topology.inv_inertia
        if self.inertia_degree:
            d = self.heard(p)
            inv_m = jnp.where(topology.inv_inertia > 0, 1.0 / jnp.where(d > 0, d, 1.0), 0.0)
        theta = topology.stubbornness
        if self.theta_inverse_degree:
            theta = jnp.where(topology.inv_inertia > 0, 1.0 / (1.0 + self.heard(p)), 0.0)
        theta = theta + p.u * (1.0 - theta)
        topo = topology._replace(weights=weights, inv_inertia=inv_m, stubbornness=theta)
        manifold = config.manifold

        def one(key):
            carry = kernel.init_run(config, hyper, p.s, key)

            def body(c, _):
                c = kernel.step_run(config, hyper, topo, c)
                return c, energy.dispersion(manifold, c.states, topo.sample)

            carry, trace = jax.lax.scan(jax.checkpoint(body), carry, None, length=self.horizon)
            d0 = energy.dispersion(manifold, p.s, topo.sample)
            return carry.states, jnp.concatenate([d0[None], trace])

        return jax.vmap(one)(keys)

    # --- the value --------------------------------------------------------------------------

    def value(self, p: Params) -> jax.Array:
        """The objective at ``p`` (a scalar)."""
        name = self.objective.name
        if self.objective.kind == "equilibrium":
            z = self.fixed_point(p)
            return opinion_objective(name, z, self.ties.src, self.ties.dst, self.acting(p), self.neutral)
        states, trace = self.final_states(p)
        if name == "diversity":
            return jnp.mean(trace[:, -1])
        if name == "time_to_consensus":
            return jnp.mean(jnp.sum(trace[:, 1:], axis=1) / trace[:, 0])
        from hivemind.engine import energy

        config, _, topology, _ = self.engine
        mobile = jnp.asarray(self.mobile, states.dtype)
        dist = jax.vmap(lambda x: energy.distance_to_anchors(config.manifold, x, topology.anchors)[0])(states)
        return jnp.mean(jnp.sum(dist * mobile, axis=1) / jnp.sum(mobile))


def problem(scenario, objective: str, horizon: int | None = None, neutral: float | None = None) -> Problem:
    """The design problem of ``scenario`` (from ``load_scenario``) for ``objective``.

    Raises ``DesignError`` (one line) where the objective cannot take the scenario: an
    equilibrium objective needs opinions on a line (manifold.kind = "euclidean", dim = 1),
    an undirected graph and an equilibrium that exists (every agent stubborn or hearing an
    anchor); a horizon objective needs ``horizon`` > 0, and ``collapse`` an anchor.
    """
    if objective not in OBJECTIVES:
        raise DesignError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    obj = OBJECTIVES[objective]
    where = scenario.source or "<scenario>"
    if neutral is not None and (objective not in ("polarization", "polarization_disagreement") or not np.isfinite(neutral)):
        raise DesignError(f"--neutral is a finite opinion that polarization is measured about; --objective {objective} has none")
    arrays = scenario.arrays
    n = arrays.n_nodes
    anchors = np.asarray(scenario.anchor_indices if scenario.anchors or scenario.every_agent_stubborn else (), np.int64)
    is_anchor = np.zeros(n, bool)
    is_anchor[anchors] = True
    tie_anchor = np.where(
        is_anchor[arrays.src], _position(anchors, arrays.src), np.where(is_anchor[arrays.dst], _position(anchors, arrays.dst), -1)
    )
    inertia_degree = scenario.agents.inertia == "degree"
    if scenario.agents.inertia == "active":
        raise DesignError(f'{where}: agents.inertia = "active" changes with the states; design takes a fixed inertia')
    theta_inverse = scenario.agents.stubbornness == "inverse_degree"
    theta = scenario.stubbornness
    couplings = np.asarray([a.coupling for a in scenario.anchors], np.float64)
    ties = Ties(jnp.asarray(arrays.src, jnp.int32), jnp.asarray(arrays.dst, jnp.int32), n)
    mobile = ~is_anchor
    if len(scenario.run.seeds) > 1 and scenario.init.kind != "explicit" and scenario.init.seed is None:
        raise DesignError(
            f"{where}: run.seeds: a design starts every seed from one configuration; give init.seed or init.kind = "
            '"explicit" (or one seed)'
        )
    if obj.kind == "equilibrium":
        if scenario.manifold.kind != "euclidean" or scenario.manifold.dim != 1:
            raise DesignError(
                f"{where}: manifold: --objective {objective} is an opinion on a line at the Friedkin-Johnsen equilibrium "
                f'(manifold.kind = "euclidean", manifold.dim = 1), got {scenario.manifold.kind} of dim {scenario.manifold.dim}'
            )
        if arrays.directed:
            raise DesignError(f"{where}: graph.directed: --objective {objective} solves the equilibrium of an undirected graph")
        if scenario.dynamics.confidence is not None:
            raise DesignError(
                f"{where}: dynamics.confidence: bounded confidence has no fixed equilibrium operator; "
                "use a horizon objective (collapse, diversity, time_to_consensus)"
            )
        settles = _settles(arrays, anchors, theta)
        if not np.all(settles):
            raise DesignError(
                f"{where}: agents.stubbornness: {int(np.sum(~settles))} agents neither are stubborn nor hear an anchor, "
                "so the equilibrium does not exist (it depends on where they start)"
            )
        from hivemind.runner.simulate import initial_configuration

        x0 = np.asarray(initial_configuration(scenario, scenario.run.seeds[0], np.float64))[:, 0]
        s = x0.copy()
        inside = bool(np.all((s >= 0) & (s <= 1)))
        box = (0.0, 1.0) if inside else (-np.inf, np.inf)
        base = Params(
            s=jnp.asarray(s),
            w=jnp.asarray(arrays.weight),
            kappa=jnp.asarray(couplings),
            anchor_value=jnp.asarray(x0[anchors]),
            u=jnp.zeros(n),
            t=jnp.asarray(s),
            held=jnp.zeros(n),
        )
        return Problem(
            scenario, obj, 0, base, ties, anchors, tie_anchor, inertia_degree, theta_inverse, arrays.inertia, theta, mobile, box,
            None, neutral,
        )  # fmt: skip
    if horizon is None or horizon <= 0:
        raise DesignError(f"--horizon must be a number of steps > 0 for --objective {objective}, got {horizon}")
    if objective == "collapse" and anchors.size == 0:
        raise DesignError(f"{where}: anchor: --objective collapse is the distance to an anchor, and this scenario has none")
    from hivemind.runner.simulate import dynamics_keys, engine_inputs, initial_configuration

    config, hyper, topology = engine_inputs(scenario, jnp.float64)
    config = dataclasses.replace(
        config, features=config.features._replace(differentiable=True, fused=False, stubborn=True, pairs=False)
    )
    topology = jax.tree.map(lambda a: jnp.asarray(a), topology)
    seeds = scenario.run.seeds
    x0 = jnp.asarray(initial_configuration(scenario, seeds[0], np.float64))
    keys = dynamics_keys(seeds)
    base = Params(
        s=x0,
        w=jnp.asarray(arrays.weight),
        kappa=jnp.asarray(couplings),
        anchor_value=jnp.zeros(anchors.size),
        u=jnp.zeros(n),
        t=jnp.zeros(n),
        held=jnp.zeros(n),
    )
    return Problem(
        scenario,
        obj,
        int(horizon),
        base,
        ties,
        anchors,
        tie_anchor,
        inertia_degree,
        theta_inverse,
        arrays.inertia,
        theta,
        mobile,
        (-np.inf, np.inf),
        (config, hyper, topology, keys),
    )


def _position(anchors: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """For nodes that are anchors: their position in ``anchors`` (0 elsewhere)."""
    where = np.zeros(int(max(anchors.max(initial=0), nodes.max(initial=0))) + 1, np.int64)
    where[anchors] = np.arange(anchors.size)
    return where[nodes]


def _settles(arrays, anchors: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Agents whose equilibrium exists: anchors, stubborn agents and every agent connected to one."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = arrays.n_nodes
    adj = sp.coo_matrix((np.ones(arrays.src.size), (arrays.src, arrays.dst)), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    grounded = theta > 0
    grounded[anchors] = True
    return np.isin(label, np.unique(label[grounded]))
