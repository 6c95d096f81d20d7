"""The design's Friedkin–Johnsen equilibrium against a dense solve and a long engine run, its
gradients against finite differences, and its projections against cvxpy's."""

from __future__ import annotations

import cvxpy as cp
import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from hivemind.design import projections
from hivemind.design.problem import problem
from hivemind.live.config import load_scenario
from hivemind.runner.simulate import simulate
from tests.design.reference import fj_dense, fj_scenario, musco
from tests.helpers import scenario


def _weighted_graph(n: int, seed: int) -> nx.Graph:
    g = nx.barabasi_albert_graph(n, 2, seed=seed)
    rng = np.random.default_rng(seed)
    for u, v in g.edges():
        g[u][v]["weight"] = float(rng.uniform(0.5, 2.0))
    return g


def test_musco_equilibrium_is_i_plus_l_inverse_s_against_a_dense_solve(tmp_path):
    g = _weighted_graph(40, 1)
    s = np.random.default_rng(2).uniform(0, 1, 40)
    fj_scenario(tmp_path / "fj.toml", g, s)
    sc = load_scenario(tmp_path / "fj.toml")
    with jax.enable_x64(True):
        prob = problem(sc, "polarization_disagreement")
        z = np.asarray(prob.fixed_point(prob.base))
    src, dst, w = sc.arrays.src, sc.arrays.dst, sc.arrays.weight
    from tests.design.reference import laplacian

    expected = np.linalg.solve(np.eye(40) + laplacian(40, src, dst, w), s)
    np.testing.assert_allclose(z, expected, rtol=1e-9, atol=1e-11)
    # Musco et al.'s closed form of the index: s_bar^T (I + L)^-1 s_bar.
    sb = s - s.mean()
    closed = sb @ np.linalg.solve(np.eye(40) + laplacian(40, src, dst, w), sb)
    with jax.enable_x64(True):
        assert float(prob.value(prob.base)) == pytest.approx(closed, rel=1e-9)


def test_equilibrium_with_anchors_stubbornness_and_inertia_against_the_engines_fixed_point():
    # theta and m given per node, two anchors with couplings: the engine's own fixed point, solved densely.
    n = 12
    theta = [0.0, 0.3, 0.0, 0.5, 0.2, 0.0, 0.7, 0.1, 0.0, 0.4, 0.0, 0.25]
    m = [1.0, 2.0, 1.5, 1.0, 3.0, 1.0, 1.0, 2.5, 1.0, 1.0, 0.5, 1.0]
    states = [[float(v)] for v in np.linspace(-1, 1, n)]
    sc = scenario(
        manifold={"kind": "euclidean", "dim": 1},
        graph={"kind": "cycle", "n": n},
        anchor=None,
        anchors=[{"node": 0, "state": [0.5], "coupling": 2.0}, {"node": 6, "state": [-0.25], "coupling": 0.5}],
        init={"kind": "explicit", "states": states, "spread": None},
        agents={"stubbornness": theta, "inertia": m},
    )
    with jax.enable_x64(True):
        prob = problem(sc, "mean_opinion")
        z = np.asarray(prob.fixed_point(prob.base))
    src, dst = sc.arrays.src, sc.arrays.dst
    kappa = np.ones(n)
    kappa[0], kappa[6] = 2.0, 0.5
    anchored = np.isin(np.arange(n), [0, 6])
    w = np.where(anchored[src], kappa[src], np.where(anchored[dst], kappa[dst], 1.0))
    th = np.asarray(theta)
    th[[0, 6]] = 0.0
    expected = fj_dense(n, src, dst, w, np.asarray(states)[:, 0], th, np.asarray(m), {0: 0.5, 6: -0.25})
    np.testing.assert_allclose(z, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_a_long_engine_run_of_an_fj_scenario_without_an_anchor_ends_at_the_solved_equilibrium(tmp_path):
    g = _weighted_graph(30, 3)
    s = np.random.default_rng(4).uniform(0, 1, 30)
    fj_scenario(
        tmp_path / "fj.toml",
        g,
        s,
        dynamics={"steps": 4000, "step_size": 0.5},
        record={"every": 4000},
        run={"precision": "float64"},
    )
    sc = load_scenario(tmp_path / "fj.toml")
    assert sc.anchors == () and sc.anchor_indices == ()
    ds = simulate(sc)
    end = ds.state.isel(seed=0, step=-1, coord=0).values
    with jax.enable_x64(True):
        prob = problem(sc, "polarization")
        z = np.asarray(prob.fixed_point(prob.base))
    np.testing.assert_allclose(end, z, atol=1e-9)


def test_gradients_through_the_solve_match_finite_differences(tmp_path):
    g = _weighted_graph(25, 5)
    s = np.random.default_rng(6).uniform(0, 1, 25)
    fj_scenario(tmp_path / "fj.toml", g, s)
    sc = load_scenario(tmp_path / "fj.toml")
    with jax.enable_x64(True):
        prob = problem(sc, "polarization_disagreement")
        base = prob.base
        u = jnp.asarray(np.random.default_rng(7).uniform(0, 0.5, 25))
        f = lambda p: prob.value(p)  # noqa: E731
        p0 = base._replace(u=u)
        grad = jax.grad(f)(p0)
        h = 1e-6
        for leaf, index in (("s", 3), ("w", 7), ("u", 11)):
            e = jnp.zeros_like(getattr(p0, leaf)).at[index].set(h)
            up = f(p0._replace(**{leaf: getattr(p0, leaf) + e}))
            down = f(p0._replace(**{leaf: getattr(p0, leaf) - e}))
            assert float(getattr(grad, leaf)[index]) == pytest.approx(float((up - down) / (2 * h)), rel=1e-5, abs=1e-9)


def test_a_horizon_objectives_gradient_through_the_engine_matches_finite_differences():
    sc = scenario(graph={"kind": "barabasi_albert", "n": 20, "params": {"m": 2}}, dynamics={"steps": 30, "step_size": 0.2})
    with jax.enable_x64(True):
        prob = problem(sc, "diversity", horizon=20)
        u = jnp.full(20, 0.2)
        p0 = prob.base._replace(u=u)
        grad = jax.grad(prob.value)(p0)
        h = 1e-6
        for index in (2, 9):
            e = jnp.zeros(20).at[index].set(h)
            fd = (prob.value(p0._replace(u=u + e)) - prob.value(p0._replace(u=u - e))) / (2 * h)
            assert float(grad.u[index]) == pytest.approx(float(fd), rel=1e-4, abs=1e-10)


def _cvx_projection(v, constraints_of):
    y = cp.Variable(v.size)
    cp.Problem(cp.Minimize(cp.sum_squares(y - v)), constraints_of(y)).solve(solver="CLARABEL")
    return y.value


def _same_projection(ours, theirs, v):
    # An interior-point solution is within its tolerance of the optimum (about 1e-5 here); ours
    # must be as close to v as it, or closer.
    np.testing.assert_allclose(ours, theirs, atol=5e-5)
    assert np.sum((ours - v) ** 2) <= np.sum((theirs - v) ** 2) + 1e-9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_projections_are_the_exact_euclidean_ones(seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(0, 1, 30)
    c = rng.uniform(0, 1, 30)
    free = rng.uniform(size=30) > 0.2
    with jax.enable_x64(True):
        y = np.asarray(projections.l1_ball_box(jnp.asarray(v), jnp.asarray(c), 2.0, 0.0, 1.0, jnp.asarray(free)))
        ref = _cvx_projection(v, lambda y: [cp.norm1(y - c) <= 2.0, y >= 0, y <= 1, y[~free] == c[~free]])
        _same_projection(y, ref, v)
        assert np.sum(np.abs(y - c)) <= 2.0 + 1e-12 and np.all((y >= 0) & (y <= 1))
        u = np.asarray(projections.capped_simplex(jnp.asarray(v), 4.0, jnp.asarray(free)))
        ref = _cvx_projection(v, lambda u: [u >= 0, u <= 1, cp.sum(u) <= 4.0, u[~free] == 0])
        _same_projection(u, ref, v)
        assert np.sum(u) <= 4.0 + 1e-12
        w = np.asarray(projections.scaled_simplex(jnp.asarray(v), 7.0))
        ref = _cvx_projection(v, lambda w: [w >= 0, cp.sum(w) == 7.0])
        _same_projection(w, ref, v)
        assert np.sum(w) == pytest.approx(7.0, abs=1e-12)
        rows = rng.normal(0, 1, (10, 3))
        moved = np.asarray(projections.group_l1_ball(jnp.asarray(rows), 1.5))
        y = cp.Variable((10, 3))
        cp.Problem(cp.Minimize(cp.sum_squares(y - rows)), [cp.sum(cp.norm(y, 2, axis=1)) <= 1.5]).solve(solver="CLARABEL")
        np.testing.assert_allclose(moved, y.value, atol=1e-5)


def test_the_objectives_are_musco_and_gionis_definitions(tmp_path):
    g = _weighted_graph(20, 8)
    s = np.random.default_rng(9).uniform(0, 1, 20)
    fj_scenario(tmp_path / "fj.toml", g, s)
    sc = load_scenario(tmp_path / "fj.toml")
    src, dst, w = sc.arrays.src, sc.arrays.dst, sc.arrays.weight
    from tests.design.reference import laplacian

    z = np.linalg.solve(np.eye(20) + laplacian(20, src, dst, w), s)
    ref = musco(z, src, dst, w)
    with jax.enable_x64(True):
        for name, value in ref.items():
            prob = problem(sc, name)
            assert float(prob.value(prob.base)) == pytest.approx(value, rel=1e-9)
