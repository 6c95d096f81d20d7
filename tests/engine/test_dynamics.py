"""The engine against mathematics: closed forms, independent linear algebra, monotone loss."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
from helpers import scenario

from hivemind import SimulationDiverged, simulate
from hivemind.engine.energy import loss, riemannian_gradient
from hivemind.engine.manifolds import get_manifold
from hivemind.runner.simulate import engine_inputs


def grounded_laplacian_nx(graph: nx.Graph, anchor: int, coupling: float, inertia: np.ndarray) -> np.ndarray:
    """M^-1 L_g built with networkx, independently of hivemind.engine.topology."""
    g = graph.copy()
    for u, v, data in g.edges(data=True):
        data["weight"] = data.get("weight", 1.0) * (coupling if anchor in (u, v) else 1.0)
    lap = nx.laplacian_matrix(g, nodelist=range(g.number_of_nodes()), weight="weight").toarray()
    lap = lap / inertia[:, None]
    keep = [i for i in range(g.number_of_nodes()) if i != anchor]
    return lap[np.ix_(keep, keep)]


def test_euclidean_gradient_descent_is_the_grounded_laplacian_iteration():
    edges = [[0, 1, 1.0], [1, 2, 2.0], [2, 3, 0.5], [3, 4, 1.0], [4, 0, 1.5], [1, 3, 1.0], [2, 5, 1.0]]
    inertia = [1.0, 2.0, 1.0, 0.5, 1.0, 3.0]
    s = scenario(
        manifold={"kind": "euclidean", "dim": 3},
        graph={"kind": "edges", "n": 6, "edges": edges},
        anchor={"node": 0, "coupling": 2.0},
        init={"kind": "random"},
        dynamics={"step_size": 0.15, "steps": 60},
        record={"every": 1},
        run={"seeds": [0, 1], "precision": "float64"},
        agents={"inertia": inertia},
    )
    ds = simulate(s)
    g = nx.Graph()
    g.add_weighted_edges_from(edges)
    A = np.eye(5) - 0.15 * grounded_laplacian_nx(g, 0, 2.0, np.asarray(inertia))
    for k in range(2):
        x = ds.state.isel(seed=k).values  # (T, N, D)
        a = x[0, 0]
        e = x[0, 1:] - a
        for t in range(x.shape[0]):
            np.testing.assert_allclose(x[t, 1:] - a, e, atol=1e-12)
            e = A @ e
        np.testing.assert_array_equal(x[:, 0], np.broadcast_to(a, x[:, 0].shape))  # the anchor never moves


@pytest.mark.parametrize("kind", ["sphere", "hyperbolic"])
def test_two_agents_contract_geometrically_along_the_geodesic(kind):
    # One agent, one anchor, edge weight w, coupling k: x <- Exp_x(eta w k Log_x(a)) keeps x on the
    # geodesic to a and multiplies the distance by (1 - eta w k) each step: d_t = d_0 (1 - eta w k)^t.
    eta, w, k = 0.05, 1.5, 2.0
    s = scenario(
        manifold={"kind": kind, "dim": 4},
        graph={"kind": "edges", "n": 2, "edges": [[0, 1, w]]},
        anchor={"node": 0, "coupling": k},
        init={"kind": "cap", "spread": 2.0},
        dynamics={"step_size": eta, "steps": 50},
        record={"every": 5},
        run={"precision": "float64"},
    )
    ds = simulate(s)
    d = ds.distance_to_anchor.isel(seed=0, agent=1).values
    expected = d[0] * (1 - eta * w * k) ** ds.step.values
    np.testing.assert_allclose(d, expected, rtol=1e-10)
    # and the loss is 1/2 w k d^2
    np.testing.assert_allclose(ds.loss.isel(seed=0).values, 0.5 * w * k * expected**2, rtol=1e-9)
    # on the geodesic: x_t stays in the plane spanned by x_0 and the anchor
    m = get_manifold(kind, 4)
    x = ds.state.isel(seed=0).values
    basis = np.linalg.qr(np.stack([x[0, 0], x[0, 1]], axis=1))[0]
    resid = x[:, 1] - (x[:, 1] @ basis) @ basis.T
    assert np.abs(resid).max() < 1e-9
    assert bool(np.all(np.asarray(m.belongs(x, 1e-9))))


@pytest.mark.parametrize("kind", ["sphere", "hyperbolic", "euclidean"])
def test_loss_never_increases_under_small_gradient_steps(kind):
    s = scenario(
        manifold={"kind": kind, "dim": 5},
        graph={"kind": "barabasi_albert", "n": 60, "params": {"m": 2}},
        init={"kind": "cap", "spread": 1.5},
        dynamics={"step_size": 0.01, "steps": 400},
        record={"every": 1},
        run={"seeds": [0, 1, 2], "precision": "float64"},
    )
    loss_ = simulate(s).loss.values
    assert np.all(np.diff(loss_, axis=1) <= 1e-12 * loss_[:, :1])
    assert np.all(loss_[:, -1] < 0.5 * loss_[:, 0])


@pytest.mark.parametrize("kind", ["sphere", "hyperbolic", "euclidean"])
def test_engine_gradient_equals_autodiff_gradient_of_the_loss(kind):
    # The engine sums Log maps; autodiff differentiates the distance formula: two code paths.
    s = scenario(
        manifold={"kind": kind, "dim": 3},
        graph={"kind": "barabasi_albert", "n": 30, "params": {"m": 2}},
        run={"precision": "float64"},
    )
    with jax.enable_x64(True):
        config, _, topo = engine_inputs(s, jnp.float64)
        m = config.manifold
        x = m.random_point(jax.random.key(4), (30,), jnp.float64)
        if kind == "sphere":  # keep away from cut loci, where d^2 is not differentiable
            x = m.exp(jnp.broadcast_to(x[0], x.shape), 0.5 * m.log(jnp.broadcast_to(x[0], x.shape), x))
        egrad = jax.grad(lambda y: loss(m, y, topo))(x)
        expected = m.egrad_to_rgrad(x, egrad).at[0].set(0.0)
        np.testing.assert_allclose(riemannian_gradient(m, x, topo), expected, atol=1e-9)


def test_stochastic_with_zero_noise_is_gradient_and_seeds_differ_with_noise():
    base = dict(graph={"kind": "barabasi_albert", "n": 40, "params": {"m": 2}}, init={"kind": "cap", "spread": 1.0, "seed": 7})
    g = simulate(scenario(**base, dynamics={"rule": "gradient", "step_size": 0.05, "steps": 50}))
    s0 = simulate(scenario(**base, dynamics={"rule": "stochastic", "noise": 0.0, "step_size": 0.05, "steps": 50}))
    # Same mathematics, different compiled programs: equal to float32 rounding, not bitwise.
    np.testing.assert_allclose(g.state.values, s0.state.values, atol=2e-6)
    noisy = simulate(
        scenario(**base, dynamics={"rule": "stochastic", "noise": 0.05, "step_size": 0.05, "steps": 50}, run={"seeds": [0, 1]})
    )
    x = noisy.state.values
    np.testing.assert_array_equal(x[0, 0], x[1, 0])  # init.seed pins the start
    assert np.abs(x[0, -1] - x[1, -1]).max() > 1e-3  # the noise paths differ


def test_stochastic_noise_has_the_requested_scale():
    # A lone agent (no edges) with constant noise sigma in R^d: after T steps its displacement is
    # N(0, T sigma^2 I); check the sample variance over many agents and seeds.
    sigma, steps, n = 0.1, 25, 400
    s = scenario(
        manifold={"kind": "euclidean", "dim": 2},
        graph={"kind": "empty", "n": n},
        init={"kind": "random"},
        dynamics={"rule": "stochastic", "noise": sigma, "step_size": 0.1, "steps": steps},
        record={"every": steps},
    )
    x = simulate(s).state.values[0]
    disp = (x[-1] - x[0])[1:]
    assert disp.var() == pytest.approx(steps * sigma**2, rel=0.1)
    assert np.all(disp[0] != 0)


def test_noise_schedules_decay_as_documented():
    from hivemind.engine.schedules import make_schedule

    t = jnp.arange(0.0, 500.0, 50.0)
    np.testing.assert_allclose(make_schedule("constant", 0.3, 10.0)(t), 0.3)
    np.testing.assert_allclose(make_schedule("inverse", 0.3, 10.0)(t), 0.3 / (1 + t / 10))
    np.testing.assert_allclose(make_schedule("exponential", 0.3, 10.0)(t), 0.3 * np.exp(-t / 10), rtol=1e-6)


@pytest.mark.parametrize("rule", ["gossip", "stochastic", "adam", "sgd"])
def test_every_rule_reaches_the_anchor_and_leaves_it_still(rule):
    dyn = {"rule": rule, "step_size": 0.1, "steps": 1500}
    if rule == "stochastic":
        dyn |= {"noise": 0.05, "noise_schedule": "exponential", "noise_decay": 100.0}
    if rule == "adam":
        dyn |= {"step_size": 0.02}
    if rule == "sgd":
        dyn |= {"options": {"momentum": 0.5}}
    s = scenario(graph={"kind": "barabasi_albert", "n": 30, "params": {"m": 2}}, dynamics=dyn, record={"every": 50})
    ds = simulate(s)
    x = ds.state.values
    np.testing.assert_array_equal(x[:, :, 0], np.broadcast_to(x[:, :1, 0], x[:, :, 0].shape))
    assert float(ds.distance_to_anchor.isel(step=-1).max()) < 1e-3


def test_sgd_is_the_gradient_rule_and_momentum_is_heavy_ball_in_euclidean_space():
    base = dict(
        manifold={"kind": "euclidean", "dim": 2},
        graph={"kind": "path", "n": 4},
        init={"kind": "random", "seed": 3},
        record={"every": 1},
        run={"precision": "float64"},
    )
    eta, mu, steps = 0.2, 0.6, 30
    g = simulate(scenario(**base, dynamics={"rule": "gradient", "step_size": eta, "steps": steps}))
    sgd = simulate(scenario(**base, dynamics={"rule": "sgd", "step_size": eta, "steps": steps}))
    np.testing.assert_allclose(sgd.state.values, g.state.values, atol=1e-13)
    hb = simulate(scenario(**base, dynamics={"rule": "sgd", "step_size": eta, "steps": steps, "options": {"momentum": mu}}))
    # Heavy ball by hand: v <- mu v + grad, x <- x - eta v, grad = L (x - a) on the path graph.
    lap = nx.laplacian_matrix(nx.path_graph(4)).toarray().astype(float)
    x = g.state.values[0, 0].copy()
    v = np.zeros_like(x)
    for t in range(1, steps + 1):
        grad = lap @ x
        grad[0] = 0.0
        v = mu * v + grad
        x = x - eta * v
        np.testing.assert_allclose(hb.state.values[0, t], x, atol=1e-12)


def test_nodes_that_cannot_hear_the_anchor_do_not_reach_it():
    # Two components; directed edges: 3 -> 0 means the anchor hears 3, not the reverse.
    edges = [[0, 1], [1, 2], [3, 4], [3, 0]]
    s = scenario(
        graph={"kind": "edges", "n": 5, "edges": edges, "directed": True},
        dynamics={"step_size": 0.2, "steps": 400},
    )
    ds = simulate(s)
    np.testing.assert_array_equal(ds.reachable.values, [1, 1, 1, 0, 0])
    final = ds.distance_to_anchor.isel(seed=0, step=-1).values
    assert final[1] < 1e-6 and final[2] < 1e-6
    assert final[3] == pytest.approx(float(ds.distance_to_anchor.isel(seed=0, step=0, agent=3)))  # hears no one
    assert final[4] > 1e-2


def test_vmapped_seeds_equal_separate_runs():
    dyn = {"rule": "gossip", "step_size": 0.2, "steps": 80}
    batch = simulate(scenario(dynamics=dyn, run={"seeds": [3, 5, 8]}))
    for k, seed in enumerate([3, 5, 8]):
        single = simulate(scenario(dynamics=dyn, run={"seed": seed}))
        np.testing.assert_allclose(batch.state.values[k], single.state.values[0], atol=1e-6)


def test_blow_up_stops_with_the_step_and_keeps_finite_records():
    s = scenario(
        manifold={"kind": "euclidean", "dim": 2}, graph={"kind": "complete", "n": 8}, dynamics={"step_size": 3.0, "steps": 500}
    )
    with pytest.raises(SimulationDiverged, match=r"between step \d+ and step \d+; try a smaller dynamics.step_size") as info:
        simulate(s)
    ds = info.value.dataset
    assert 0 < ds.sizes["step"] < 51
    assert np.isfinite(ds.state.values).all()
    assert ds.attrs["status"].startswith("diverged")
    assert info.value.step > int(ds.step[-1])


def test_cap_initialisation_lies_within_spread():
    for kind in ("sphere", "hyperbolic", "euclidean"):
        s = scenario(
            manifold={"kind": kind, "dim": 3},
            graph={"kind": "complete", "n": 50},
            init={"kind": "cap", "spread": 0.7},
            dynamics={"steps": 1},
        )
        d0 = simulate(s).distance_to_anchor.isel(seed=0, step=0).values
        assert d0.max() <= 0.7 + 1e-5 and d0[1:].min() > 0 and math.isclose(d0[0], 0.0, abs_tol=1e-7)
