"""The compiled engine: a batch of runs started and advanced by one jitted, vmapped scan.

Arrays in, arrays out: ``start`` and ``advance`` take the static ``EngineConfig``, the
numeric hyperparameters (traced, so changing a number does not recompile), the topology
and the states. ``hivemind.runner`` builds these from a scenario. A run of several seeds and
a sweep of grid points are the same two programs: the sweep gives them ``Lanes``, the
leaves of the numbers that differ from run to run, and keeps ``observe_summary``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.engine import energy
from hivemind.engine.manifolds import Manifold
from hivemind.engine.rules import make_rule
from hivemind.engine.topology import Topology

# What ``_observe`` records, with its dimensions (seed first) and meaning: the result file's variables.
VARIABLES = {
    "state": (("seed", "step", "agent", "coord"), "agent state (ambient coordinates)"),
    "loss": (("seed", "step"), "global loss 1/2 sum w kappa d^2"),
    "distance_to_anchor": (("seed", "step", "agent"), "geodesic distance to the nearest anchor"),
    "dispersion": (("seed", "step"), "mean pairwise geodesic distance over a fixed sample of agents"),
    "clusters": (("seed", "step"), "connected components once edges longer than cluster_tol are dropped"),
    "largest_cluster_share": (("seed", "step"), "share of the nodes in the largest cluster"),
    "nearest_anchor": (("seed", "step", "agent"), "index (into the anchor dimension) of the nearest anchor"),
    "anchor_share": (("seed", "step", "anchor"), "share of the mobile agents nearest to each anchor"),
}


@dataclass(frozen=True)
class EngineConfig:
    """The static half of a run: hashable, so it can key jit's cache."""

    manifold: Manifold
    rule: str
    schedule: str = "constant"
    static_options: tuple[tuple[str, Any], ...] = ()
    features: energy.Features = energy.Features()


class Carry(NamedTuple):
    states: jax.Array
    rule_state: Any
    key: jax.Array


def rule_for(config: EngineConfig, hyper: dict):
    """The update rule of ``config`` with the numbers in ``hyper``."""
    options = dict(config.static_options) | dict(hyper.get("options", {}))
    return make_rule(config.manifold, config.rule, hyper, config.schedule, options, config.features)


def _observe(manifold: Manifold, states: jax.Array, topology: Topology, cluster_tol, fused: bool = False) -> dict[str, jax.Array]:
    """What is recorded of a batch of runs (S, N, D), computed agents-first; see ``VARIABLES``.

    With ``fused`` the C++ kernel computes the distances (of the edges once, for the loss and the
    clusters, and of the dispersion's pairs): on a sweep of the quickstart the records took longer
    than the steps without it.
    """
    x, n = energy.agents_first(states), states.shape[0]

    def per_run(a):
        return energy.seeds_first(a, n, agent_axis=False)

    dist, nearest = energy.distance_to_anchors(manifold, x, topology.anchors)
    edges = energy.pair_distances(manifold, x, topology.receivers, topology.senders, fused)
    n_clusters, largest = energy.clusters(manifold, x, topology, cluster_tol, edges)
    out = {
        "state": states,
        "loss": per_run(energy.loss(manifold, x, topology, edges)),
        "distance_to_anchor": energy.seeds_first(dist, n),
        "dispersion": per_run(energy.dispersion(manifold, x, topology.sample, fused)),
        "clusters": per_run(n_clusters),
        "largest_cluster_share": per_run(largest),
    }
    n_anchors = topology.anchors.shape[0]
    if n_anchors > 1:
        mobile = (topology.inv_inertia > 0).astype(states.dtype)
        mobile = mobile.reshape(mobile.shape + (1,) * (nearest.ndim - 1))
        onehot = jax.nn.one_hot(nearest, n_anchors, dtype=states.dtype) * mobile[..., None]  # (N, *batch, A)
        share = jnp.sum(onehot, axis=0) / jnp.sum(mobile)
        out["nearest_anchor"] = energy.seeds_first(nearest, n)
        out["anchor_share"] = share if n > 1 else share[None]
    return out


def observe_summary(
    manifold: Manifold, states: jax.Array, topology: Topology, cluster_tol, fused: bool = False
) -> dict[str, jax.Array]:
    """A few numbers per run instead of every agent's state: what a sweep keeps of each step it
    records; ``fused`` as in ``_observe``."""
    x, n = energy.agents_first(states), states.shape[0]

    def per_run(a):
        return energy.seeds_first(a, n, agent_axis=False)

    dist, _ = energy.distance_to_anchors(manifold, x, topology.anchors)
    mobile = ((topology.inv_inertia > 0) & (topology.node_mask > 0)).astype(states.dtype)
    mobile = mobile.reshape(mobile.shape + (1,) * (dist.ndim - 1))
    edges = energy.pair_distances(manifold, x, topology.receivers, topology.senders, fused)
    n_clusters, largest = energy.clusters(manifold, x, topology, cluster_tol, edges)
    return {
        "mean_distance": per_run(jnp.sum(dist * mobile, axis=0) / jnp.sum(mobile)),
        "loss": per_run(energy.loss(manifold, x, topology, edges)),
        "clusters": per_run(n_clusters),
        "largest_cluster_share": per_run(largest),
        "dispersion": per_run(energy.dispersion(manifold, x, topology.sample, fused)),
    }


def _fused_records(config: EngineConfig) -> bool:
    """Whether the records' distances come from the fused kernel: where it computes the pull
    (never in a run that is differentiated)."""
    return config.features.fused and not config.features.differentiable


def init_run(config: EngineConfig, hyper: dict, x: jax.Array, key: jax.Array) -> Carry:
    """One run's carry at step 0: the rule's state drawn from its own half of ``key``."""
    rule = rule_for(config, hyper)
    k_rule, k_run = jax.random.split(key)
    return Carry(x, rule.init(x, k_rule), k_run)


def step_run(config: EngineConfig, hyper: dict, topology: Topology, c: Carry) -> Carry:
    """One run, one step; the key is split, never reused."""
    rule = rule_for(config, hyper)
    key, sub = jax.random.split(c.key)
    states, rule_state = rule.step(c.states, c.rule_state, topology, sub)
    return Carry(states, rule_state, key)


@dataclass(frozen=True)
class Lanes:
    """Runs that differ in their numbers: which leaves of ``hyper`` and ``topology`` carry a
    leading run axis (0) and which all runs share (None), as ``jax.vmap``'s ``in_axes``.

    Flattened, so that it is hashable and can pick the compiled program.
    """

    hyper: tuple
    hyper_def: Any
    topology: tuple
    topology_def: Any

    @classmethod
    def of(cls, hyper_axes, topology_axes) -> Lanes:
        def flat(tree):
            leaves, treedef = jax.tree_util.tree_flatten(tree, is_leaf=lambda x: x is None)
            return tuple(leaves), treedef

        return cls(*flat(hyper_axes), *flat(topology_axes))

    def axes(self) -> tuple:
        return (
            jax.tree_util.tree_unflatten(self.hyper_def, self.hyper),
            jax.tree_util.tree_unflatten(self.topology_def, self.topology),
        )


def _one_summary(config: EngineConfig, hyper: dict, topology: Topology, x) -> dict[str, jax.Array]:
    summary = observe_summary(config.manifold, x[None], topology, hyper["cluster_tol"], _fused_records(config))
    return {k: v[0] for k, v in summary.items()}


@partial(jax.jit, static_argnames=("config", "lanes"))
def start(config: EngineConfig, hyper: dict, topology: Topology, states: jax.Array, keys: jax.Array, lanes: Lanes | None = None):
    """Initial carries and observations for a batch of runs: ``states`` (S, N, D), ``keys`` (S,).

    Without ``lanes`` the runs are the seeds of one scenario, sharing ``hyper`` and
    ``topology``, and every variable of ``VARIABLES`` is observed. With ``lanes`` (a sweep)
    each run has its own numbers where ``lanes`` says so, and ``observe_summary`` is kept.
    """
    if lanes is None:
        carry = jax.vmap(partial(init_run, config, hyper))(states, keys)
        return carry, _observe(config.manifold, states, topology, hyper["cluster_tol"], _fused_records(config))
    h_axes, t_axes = lanes.axes()
    carry = jax.vmap(partial(init_run, config), in_axes=(h_axes, 0, 0))(hyper, states, keys)
    return carry, jax.vmap(partial(_one_summary, config), in_axes=(h_axes, t_axes, 0))(hyper, topology, states)


@partial(jax.jit, static_argnames=("config", "n_records", "every", "lanes"), donate_argnames=("carry",))
def advance(
    config: EngineConfig,
    hyper: dict,
    topology: Topology,
    carry: Carry,
    n_records: int,
    every: int,
    lanes: Lanes | None = None,
):
    """Run ``n_records * every`` steps for every run, observing every ``every`` steps.

    Returns the new carry and the observations (``_observe``, or ``observe_summary`` with
    ``lanes``; see ``start``), each with the run axis first and the record axis second:
    state (S, n_records, N, D), loss (S, n_records), ...

    With ``lanes``, each run is one vmapped lane with its own numbers: the drift's custom
    batching rule then sees one batch of runs and computes agents-first, instead of a vmap
    over points around a vmap over seeds, which XLA's CPU backend runs as slow batched gathers.
    """
    if lanes is None:

        def step(c: Carry, _):
            return jax.vmap(partial(step_run, config, hyper, topology))(c), None

        def observe(c: Carry):
            return _observe(config.manifold, c.states, topology, hyper["cluster_tol"], _fused_records(config))

    else:
        h_axes, t_axes = lanes.axes()

        def step(c: Carry, _):
            return jax.vmap(partial(step_run, config), in_axes=(h_axes, t_axes, 0))(hyper, topology, c), None

        def observe(c: Carry):
            return jax.vmap(partial(_one_summary, config), in_axes=(h_axes, t_axes, 0))(hyper, topology, c.states)

    def record(c: Carry, _):
        c, _ = jax.lax.scan(step, c, None, length=every)
        return c, observe(c)

    carry, recs = jax.lax.scan(record, carry, None, length=n_records)
    return carry, {k: jnp.swapaxes(r, 0, 1) for k, r in recs.items()}


# About this many progress updates (and NaN checks) per run.
CHUNKS = 20


def chunk_plan(steps: int, every: int, max_records: int | None = None) -> list[tuple[int, int]]:
    """(records, stride) of every chunk: about ``CHUNKS`` chunks of at most ``max_records`` records.

    The plan depends on its arguments alone, so a resumed run replays the same chunks and
    ends bitwise equal to an uninterrupted one.
    """
    n_full, rest = divmod(steps, every)
    chunk = max(1, math.ceil(n_full / CHUNKS) if max_records is None else min(math.ceil(n_full / CHUNKS), max_records))
    plan = [(min(chunk, n_full - k), every) for k in range(0, n_full, chunk)]
    if rest:
        plan.append((1, rest))
    return plan


def record_steps(steps: int, every: int) -> np.ndarray:
    """0, every, 2 every, ..., and always the final step."""
    out = list(range(0, steps + 1, every))
    if out[-1] != steps:
        out.append(steps)
    return np.asarray(out, dtype=np.int64)
