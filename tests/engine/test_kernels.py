"""The pair kernel (each undirected edge's geometry once) against the message kernel and an independent numpy pull."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from hivemind.engine import energy
from hivemind.engine.manifolds import get_manifold
from hivemind.engine.topology import Topology, build_topology, graph_arrays

KINDS = ("sphere", "hyperbolic", "euclidean")


def _topology(graph: nx.Graph, dtype) -> Topology:
    topo = build_topology(graph_arrays(graph), anchors=0, couplings=2.0, dtype=dtype)
    return Topology(*(jnp.asarray(a) for a in topo))


def _states(kind: str, n: int, seed: int, dtype, spread: float = 1.0) -> jax.Array:
    manifold = get_manifold(kind, 3)
    key = jax.random.key(seed)
    o = jnp.broadcast_to(manifold.origin(dtype), (n, manifold.ambient_dim))
    v = spread * jax.vmap(manifold.random_tangent)(jax.random.split(key, n), o)
    return manifold.exp(o, v)


def _numpy_log(kind: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Textbook logarithms in float64, written from the formulas rather than from the engine."""
    if kind == "euclidean":
        return y - x
    if kind == "sphere":
        c = np.clip(x @ y, -1.0, 1.0)
        theta = np.arccos(c)
        return (theta / np.sin(theta)) * (y - c * x) if theta > 1e-12 else y - x
    lor = -x[0] * y[0] + x[1:] @ y[1:]  # hyperboloid, <x, y>_L = -cosh d
    d = np.arccosh(max(-lor, 1.0))
    return (d / np.sinh(d)) * (y + lor * x) if d > 1e-12 else y - x


@pytest.mark.parametrize("kind", KINDS)
def test_pair_kernel_matches_numpy_pull(kind):
    graph = nx.barabasi_albert_graph(40, 3, seed=1)
    x = np.asarray(_states(kind, 40, 0, jnp.float64, 0.8))
    with jax.enable_x64(True):
        topo = _topology(graph, np.float64)
        got = np.asarray(energy.pull(get_manifold(kind, 3), jnp.asarray(x), topo, pairs=True))
    want = np.zeros_like(x)
    for u, v in graph.edges:
        w = 2.0 if 0 in (u, v) else 1.0  # the anchor's coupling
        want[v] += w * _numpy_log(kind, x[v], x[u])
        want[u] += w * _numpy_log(kind, x[u], x[v])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("confidence", [None, 0.7])
def test_pair_kernel_equals_message_kernel_in_float64(kind, confidence):
    graph = nx.watts_strogatz_graph(200, 6, 0.3, seed=2)
    with jax.enable_x64(True):
        manifold = get_manifold(kind, 3)
        topo = _topology(graph, np.float64)
        x = _states(kind, 200, 1, jnp.float64, 1.2)
        c = None if confidence is None else jnp.float64(confidence)
        f_msg, h_msg = energy.pull_and_heard(manifold, x, topo, c, pairs=False)
        f_pair, h_pair = energy.pull_and_heard(manifold, x, topo, c, pairs=True)
    scale = float(jnp.max(jnp.abs(f_msg)))
    assert scale > 0.1  # the bound leaves edges acting
    np.testing.assert_allclose(np.asarray(f_pair), np.asarray(f_msg), rtol=0, atol=1e-12 * scale)
    np.testing.assert_array_equal(np.asarray(h_pair), np.asarray(h_msg))


@pytest.mark.parametrize("kind", KINDS)
def test_pair_kernel_float32_error_is_the_message_kernels(kind):
    """In float32 the kernels round differently; each must be as close to the float64 pull as the other."""
    graph = nx.barabasi_albert_graph(500, 3, seed=3)
    x32 = _states(kind, 500, 2, jnp.float32, 1.5)
    manifold = get_manifold(kind, 3)
    errors = {}
    with jax.enable_x64(True):
        truth = energy.pull(manifold, x32.astype(jnp.float64), _topology(graph, np.float64))
    for pairs in (False, True):
        got = energy.pull(manifold, x32, _topology(graph, np.float32), pairs=pairs)
        errors[pairs] = float(jnp.max(jnp.abs(got - truth)))
    scale = float(jnp.max(jnp.abs(truth)))
    eps = float(jnp.finfo(jnp.float32).eps)
    assert errors[True] <= 2 * errors[False] + 4 * eps * scale, errors


@pytest.mark.parametrize("kind", ["sphere", "hyperbolic"])
def test_pair_kernel_batched_over_seeds_and_near_antipodes(kind):
    """vmap over runs (the agents-first path), with pairs at distance 0 and near the antipode."""
    graph = nx.cycle_graph(12)
    manifold = get_manifold(kind, 3)
    with jax.enable_x64(True):
        topo = _topology(graph, np.float64)
        xs = jnp.stack([_states(kind, 12, s, jnp.float64, 1.0) for s in range(3)])
        if kind == "sphere":  # node 3 at node 2's antipode but for 1e-4 rad; node 5 equal to node 4
            p = xs[0, 2]
            q = manifold.proj(p, jnp.array([0.0, 1.0, 0.0, 0.0]))
            q = q / jnp.linalg.norm(q)
            xs = xs.at[0, 3].set(manifold.exp(-p, 1e-4 * q)).at[0, 5].set(xs[0, 4])
        msg = jax.vmap(lambda x: energy.pull(manifold, x, topo))(xs)
        pair = jax.vmap(lambda x: energy.pull(manifold, x, topo, pairs=True))(xs)
        single = jnp.stack([energy.pull(manifold, x, topo, pairs=True) for x in xs])
    assert np.all(np.isfinite(np.asarray(pair)))
    np.testing.assert_allclose(np.asarray(pair), np.asarray(msg), rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(pair), np.asarray(single), rtol=0, atol=1e-12)


def test_directed_graphs_keep_the_message_kernel():
    from hivemind.runner.simulate import engine_inputs
    from hivemind.scenario import load_scenario

    undirected = load_scenario("scenarios/quickstart.toml")
    assert engine_inputs(undirected, jnp.float32)[0].features.pairs
    topo = build_topology(graph_arrays(nx.gnp_random_graph(30, 0.2, seed=0, directed=True)), 0)
    assert topo.half.size == 0
    und = build_topology(graph_arrays(nx.gnp_random_graph(30, 0.2, seed=0)), 0)
    assert und.half.size * 2 == und.senders.size
    # Every pair appears once, and its receivers stay sorted for the sorted segment sum.
    pairs = {frozenset((int(und.senders[m]), int(und.receivers[m]))) for m in und.half}
    assert len(pairs) == und.half.size
    assert np.all(np.diff(und.receivers[und.half]) >= 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("pairs", [False, True])
def test_gradient_through_a_run_matches_finite_differences(kind, pairs):
    """d/d(eta, kappa) of the distance to the anchor after 10 gradient steps, by jax.grad and by central differences."""
    from hivemind.engine.energy import Features
    from hivemind.engine.rules import gradient

    graph = nx.barabasi_albert_graph(30, 2, seed=4)
    manifold = get_manifold(kind, 3)
    features = Features(pairs=pairs, differentiable=True)
    with jax.enable_x64(True):
        base = _topology(graph, np.float64)
        x0 = _states(kind, 30, 5, jnp.float64, 0.9)
        anchor_edges = (base.senders == 0) | (base.receivers == 0)

        def objective(params):
            eta, kappa = params
            # The anchor's coupling scales its edges' weights (built with kappa = 2 above).
            topo = base._replace(weights=jnp.where(anchor_edges, base.weights / 2.0 * kappa, base.weights))
            rule = gradient(manifold, eta, features)
            state = rule.init(x0, jax.random.key(0))

            def step(carry, _):
                x, s = carry
                return rule.step(x, s, topo, jax.random.key(1)), None

            (x, _), _ = jax.lax.scan(step, (x0, state), None, length=10)
            return jnp.mean(manifold.dist(x, x[0][None]))

        # eta * lambda_max well below 2 (hubs of this graph hear about 12 neighbours): a contracting run,
        # whose derivatives are smooth enough for central differences.
        params = jnp.array([0.03, 1.5])
        grad = np.asarray(jax.grad(objective)(params))
        h = 1e-6
        fd = np.array([(objective(params + h * e) - objective(params - h * e)) / (2 * h) for e in np.eye(2)])
    assert np.all(np.abs(grad) > 1e-4)  # both parameters matter
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_the_fast_pull_is_forward_only_and_the_differentiable_one_is_not():
    graph = nx.cycle_graph(6)
    manifold = get_manifold("sphere", 2)
    topo = _topology(graph, np.float32)
    x = _states("sphere", 6, 0, jnp.float32, 0.5)
    with pytest.raises(Exception):  # noqa: B017 (JAX's error type for custom_vmap under reverse mode varies)
        jax.grad(lambda y: jnp.sum(energy.pull(manifold, y, topo)))(x)
    g = jax.grad(lambda y: jnp.sum(energy.pull(manifold, y, topo, differentiable=True)))(x)
    assert np.all(np.isfinite(np.asarray(g)))


def test_the_pair_kernel_refuses_a_directed_topology():
    topo = build_topology(graph_arrays(nx.gnp_random_graph(10, 0.4, seed=1, directed=True)), 0)
    topo = Topology(*(jnp.asarray(a) for a in topo))
    x = _states("sphere", 10, 0, jnp.float32)
    with pytest.raises(ValueError, match="undirected"):
        energy.pull(get_manifold("sphere", 3), x, topo, pairs=True)
