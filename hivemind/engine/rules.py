"""Update rules as (init, step) pairs, in the style of optax.

``init(states, key) -> rule_state`` and ``step(states, rule_state, topology, key) ->
(states, rule_state)`` are pure, so the simulator can jit, scan and vmap any rule
without knowing which one it runs. Numeric hyperparameters may be Python floats or
traced arrays; passing arrays keeps a changed step size from recompiling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from hivemind.engine.energy import PLAIN, Features, drift
from hivemind.engine.manifolds import Manifold
from hivemind.engine.schedules import make_schedule
from hivemind.engine.topology import Topology
from hivemind.scenario.optax_rules import optax_optimizer

Array = jax.Array


class Rule(NamedTuple):
    init: Callable[[Array, Array], Any]
    step: Callable[[Array, Any, Topology, Array], tuple[Array, Any]]


class Count(NamedTuple):
    """The state of rules that need the step number (for schedules) and, for stubborn
    agents, their prejudices: the initial states (None when no agent is stubborn)."""

    count: Array
    prejudice: Array | None = None


def _count_init(features: Features):
    def init(states: Array, key: Array) -> Count:
        return Count(jnp.zeros((), jnp.int32), states if features.stubborn else None)

    return init


def gradient(manifold: Manifold, step_size, features: Features = PLAIN, confidence=None) -> Rule:
    """Simultaneous Riemannian gradient descent on the global loss.

    x_i <- Exp_{x_i}( eta * drift_i ), drift_i = (1/m_i) sum_j w_ij kappa_ij Log_{x_i}(x_j)
    (with stubbornness and a confidence bound as ``energy.drift`` says); anchors
    (1/m = 0) stay put.
    """

    def step(states, state, topology, key):
        v = step_size * drift(manifold, states, topology, features, confidence, state.prejudice)
        return manifold.exp(states, v), state._replace(count=state.count + 1)

    return Rule(_count_init(features), step)


def stochastic(
    manifold: Manifold, step_size, noise, schedule: str = "constant", decay=100.0, features: Features = PLAIN, confidence=None
) -> Rule:
    """The gradient step plus tangent Gaussian noise of scale sigma_t.

    sigma_t follows ``schedule`` ("constant", "inverse", "exponential" with time
    constant ``decay`` steps). Each tangent coordinate of a mobile agent gets
    N(0, sigma_t^2); anchors get none.
    """
    sigma = make_schedule(schedule, noise, decay)

    def step(states, state, topology, key):
        v = step_size * drift(manifold, states, topology, features, confidence, state.prejudice)
        mobile = (topology.inv_inertia > 0)[:, None]
        xi = manifold.random_tangent(key, states)
        v = v + jnp.where(mobile, sigma(state.count.astype(states.dtype)) * xi, 0.0)
        return manifold.exp(states, v), state._replace(count=state.count + 1)

    return Rule(_count_init(features), step)


def gossip(manifold: Manifold, step_size, prob, features: Features = PLAIN, confidence=None) -> Rule:
    """Asynchronous random pairwise interactions.

    At each tick every graph edge fires independently with probability ``prob``; the
    endpoints of a fired edge move toward each other along the geodesic, each by
    ``step_size * w * kappa / m`` of the way (an anchor, with 1/m = 0, by none of
    it). Both directions of an undirected edge fire together. With a confidence bound
    a fired edge acts only between agents closer than it: the Deffuant model.
    """

    def step(states, state, topology, key):
        u = jax.random.uniform(key, (topology.n_messages,), dtype=states.dtype)
        fired = (u[topology.pair] < prob).astype(states.dtype)
        live = topology._replace(weights=topology.weights * fired)
        v = step_size * drift(manifold, states, live, features, confidence, state.prejudice)
        return manifold.exp(states, v), state._replace(count=state.count + 1)

    return Rule(_count_init(features), step)


# Optimizer-state leaves that are tangent vectors and must follow the point from one
# tangent space to the next. Others (Adam's second moment, counts) are coordinate-wise
# scales and stay as they are.
_TANGENT_LEAVES = ("mu", "trace", "momentum")


def _is_tangent_leaf(path) -> bool:
    names = [getattr(k, "name", getattr(k, "key", None)) for k in path]
    return any(n in _TANGENT_LEAVES for n in names)


class RiemannianState(NamedTuple):
    inner: Any
    prejudice: Array | None = None


def riemannian(manifold: Manifold, optimizer: optax.GradientTransformation, features: Features = PLAIN, confidence=None) -> Rule:
    """Any optax optimizer made Riemannian.

    The Riemannian gradient goes to ``optimizer.update`` in the tangent space; the
    update is projected back onto the tangent space (coordinate-wise scaling such as
    Adam's leaves it) and applied with the manifold's retraction. Momentum-like state
    is parallel-transported to the new point (Becigneul & Ganea, "Riemannian adaptive
    optimization methods", ICLR 2019).
    """

    def init(states, key):
        return RiemannianState(optimizer.init(states), states if features.stubborn else None)

    def step(states, state, topology, key):
        mobile = (topology.inv_inertia > 0)[:, None]
        g = -drift(manifold, states, topology, features, confidence, state.prejudice)
        updates, inner = optimizer.update(g, state.inner, states)
        updates = jnp.where(mobile, manifold.proj(states, updates), 0.0)
        new = manifold.retract(states, updates)

        def carry_over(path, leaf):
            if _is_tangent_leaf(path) and getattr(leaf, "shape", None) == states.shape:
                return manifold.transport(states, new, leaf)
            return leaf

        inner = jax.tree_util.tree_map_with_path(carry_over, inner)
        return new, RiemannianState(inner, state.prejudice)

    return Rule(init, step)


def make_rule(
    manifold: Manifold,
    name: str,
    hyper: dict,
    schedule: str = "constant",
    options: dict | None = None,
    features: Features = PLAIN,
) -> Rule:
    """The rule called ``name`` with hyperparameters ``hyper`` (floats or arrays).

    ``hyper`` holds ``step_size`` and, as the rule needs, ``noise``, ``noise_decay``,
    ``gossip_prob`` and ``confidence``. Any other name is an optax optimizer, built
    with ``options``.
    """
    c = hyper.get("confidence")
    if name == "gradient":
        return gradient(manifold, hyper["step_size"], features, c)
    if name == "stochastic":
        return stochastic(manifold, hyper["step_size"], hyper["noise"], schedule, hyper["noise_decay"], features, c)
    if name == "gossip":
        return gossip(manifold, hyper["step_size"], hyper["gossip_prob"], features, c)
    return riemannian(manifold, optax_optimizer(name, hyper["step_size"], dict(options or {})), features, c)
