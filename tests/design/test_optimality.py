"""Designs against the truth: cvxpy's convex optima (innate opinions, ties reweighted at a fixed
total; Musco et al.), brute force over every choice on small graphs (stubborn agents, removed
ties), the modular case's exact top-k, and greedy's (1 - 1/e) guarantee (Gionis et al.)."""

from __future__ import annotations

import itertools
import math

import cvxpy as cp
import jax
import networkx as nx
import numpy as np
import pytest

from hivemind.design import design
from hivemind.design.heuristics import greedy
from hivemind.design.interventions import intervention
from hivemind.design.problem import problem
from hivemind.live.config import load_scenario
from tests.design.reference import fj_dense, fj_scenario, laplacian, musco


def _musco_network(tmp_path, n, seed, weighted=False, name="fj"):
    g = nx.gnm_random_graph(n, 3 * n, seed=seed)
    while not nx.is_connected(g):
        seed += 100
        g = nx.gnm_random_graph(n, 3 * n, seed=seed)
    if weighted:
        rng = np.random.default_rng(seed)
        for u, v in g.edges():
            g[u][v]["weight"] = float(rng.uniform(0.5, 2.0))
    s = np.random.default_rng(seed + 1).beta(2, 5, n)
    fj_scenario(tmp_path / f"{name}.toml", g, s)
    return load_scenario(tmp_path / f"{name}.toml"), s


def _exact(sc, s, held: dict, w=None):
    """Musco's FJ with the agents of ``held`` fixed at their values, by a dense solve."""
    a = sc.arrays
    w = a.weight if w is None else w
    d = np.bincount(a.src, w, a.n_nodes) + np.bincount(a.dst, w, a.n_nodes)
    theta = 1.0 / (1.0 + d)
    m = np.where(d > 0, d, 1.0)
    return fj_dense(a.n_nodes, a.src, a.dst, w, s, theta, m, held)


@pytest.mark.slow
def test_innate_design_reaches_the_convex_optimum_of_cvxpy(tmp_path):
    sc, s = _musco_network(tmp_path, 200, 11, weighted=True)
    n = 200
    result = design(sc, "polarization_disagreement", "innate", 5.0)
    lap = laplacian(n, sc.arrays.src, sc.arrays.dst, sc.arrays.weight)
    centre = np.eye(n) - 1.0 / n
    quad = centre @ np.linalg.inv(np.eye(n) + lap) @ centre
    y = cp.Variable(n)
    best = cp.Problem(cp.Minimize(cp.quad_form(y, cp.psd_wrap((quad + quad.T) / 2))), [cp.norm1(y - s) <= 5.0, y >= 0, y <= 1])
    best.solve(solver="CLARABEL")
    assert result.value <= best.value * 1.01
    assert result.value >= best.value * (1 - 1e-6)  # cvxpy's optimum is a lower bound
    # The design is feasible, and its value is the objective of its opinions by a dense solve.
    change = result.variable - s
    assert np.sum(np.abs(change)) <= 5.0 + 1e-9 and np.all((result.variable >= 0) & (result.variable <= 1))
    z = np.linalg.solve(np.eye(n) + lap, result.variable)
    assert musco(z, sc.arrays.src, sc.arrays.dst, sc.arrays.weight)["polarization_disagreement"] == pytest.approx(
        result.value, rel=1e-8
    )


@pytest.mark.slow
def test_musco_et_als_published_innate_program_is_reached(tmp_path):
    # OptimizeInnate.m (Musco, Musco & Tsourakakis's code): min (s + x)^T (I + L)^-1 (s + x) over
    # |x|_1 <= alpha, x <= 0, s + x >= 0: polarization about the neutral 0, opinions lowered only.
    sc, s = _musco_network(tmp_path, 200, 13)
    n = 200
    lap = laplacian(n, sc.arrays.src, sc.arrays.dst, sc.arrays.weight)
    inverse = np.linalg.inv(np.eye(n) + lap)
    for alpha in (2.0, 10.0):
        result = design(sc, "polarization_disagreement", "innate", alpha, direction="down", neutral=0.0)
        x = cp.Variable(n)
        best = cp.Problem(
            cp.Minimize(cp.quad_form(x + s, cp.psd_wrap((inverse + inverse.T) / 2))), [cp.norm1(x) <= alpha, x <= 0, s + x >= 0]
        )
        best.solve(solver="CLARABEL")
        assert best.value * (1 - 1e-6) <= result.value <= best.value * 1.01
        change = result.variable - s
        assert np.all(change <= 1e-12) and np.all(result.variable >= 0) and np.sum(np.abs(change)) <= alpha + 1e-9
        # its value is the published objective of its opinions
        y = result.variable
        assert y @ inverse @ y == pytest.approx(result.value, rel=1e-8)


@pytest.mark.slow
def test_reweighting_ties_at_a_fixed_total_reaches_cvxpys_optimum(tmp_path):
    sc, s = _musco_network(tmp_path, 200, 12)
    n, a = 200, sc.arrays
    result = design(sc, "polarization_disagreement", "edges", 0.0)
    incidence = np.zeros((n, a.src.size))
    incidence[a.src, np.arange(a.src.size)] = 1.0
    incidence[a.dst, np.arange(a.src.size)] = -1.0
    w = cp.Variable(a.src.size, nonneg=True)
    sb = s - s.mean()
    best = cp.Problem(
        cp.Minimize(cp.matrix_frac(sb, np.eye(n) + incidence @ cp.diag(w) @ incidence.T)), [cp.sum(w) == a.weight.sum()]
    )
    best.solve(solver="CLARABEL")
    assert best.value * (1 - 1e-5) <= result.value <= best.value * 1.01
    assert np.sum(result.variable) == pytest.approx(a.weight.sum(), rel=1e-12) and np.all(result.variable >= 0)


@pytest.mark.parametrize("objective", ["polarization_disagreement", "mean_opinion"])
def test_stubborn_choices_against_brute_force_and_greedy_by_dense_solves(tmp_path, objective):
    sc, s = _musco_network(tmp_path, 12, 3)
    k = 3
    result = design(sc, objective, "stubborn", k, steps=200)
    target = 1.0 if objective == "mean_opinion" else None
    sign = 1.0 if result.sense == "min" else -1.0

    def value(chosen):
        z = _exact(sc, s, {i: (s[i] if target is None else target) for i in chosen})
        return musco(z, sc.arrays.src, sc.arrays.dst, sc.arrays.weight)[objective]

    every = {c: value(c) for c in itertools.combinations(range(12), k)}
    best = min(every.values(), key=lambda v: sign * v)
    # The design's and every heuristic's value is its choice's objective by a dense solve.
    assert result.value == pytest.approx(value(result.chosen), rel=1e-8)
    for h in result.heuristics.values():
        assert h.value == pytest.approx(value(h.chosen), rel=1e-8)
    assert sign * result.value >= sign * best - 1e-12
    # Greedy by rank-one updates chooses what greedy by a dense solve per candidate chooses.
    chosen: list[int] = []
    for _ in range(k):
        left = [i for i in range(12) if i not in chosen]
        chosen.append(min(left, key=lambda i: sign * value(tuple(chosen + [i]))))
    assert result.heuristics["greedy"].chosen == tuple(chosen)
    assert result.heuristics["greedy"].how.startswith("rank-one")
    # On this small graph the relaxation, rounded, is within 5 % of the best choice's change (for
    # polarization every choice costs: agents held at their own extreme opinions pull the others apart).
    gain, best_gain = sign * (result.baseline - result.value), sign * (result.baseline - best)
    assert gain >= best_gain - 0.05 * abs(best_gain)


def test_greedy_keeps_its_one_minus_one_over_e_guarantee(tmp_path):
    # Gionis et al.: the total opinion with k agents' expressed opinions fixed at 1 is monotone and
    # submodular, so greedy's gain is at least (1 - 1/e) of the best k-subset's.
    for seed in (21, 22, 23):
        sc, s = _musco_network(tmp_path, 11, seed, weighted=True, name=f"g{seed}")
        with jax.enable_x64(True):
            prob = problem(sc, "mean_opinion")
            iv = intervention(prob, "stubborn", 4)
            chosen, how = greedy(prob, iv, 4, "max")
        value = lambda c, sc=sc, s=s: float(np.mean(_exact(sc, s, {i: 1.0 for i in c})))  # noqa: E731
        base = float(np.mean(_exact(sc, s, {})))
        best = max(value(c) for c in itertools.combinations(range(11), 4))
        assert value(chosen) - base >= (1 - 1 / math.e) * (best - base) - 1e-12
        assert value(chosen) <= best + 1e-12


def test_the_modular_case_is_solved_exactly_by_the_top_k_of_a_closed_form_score(tmp_path):
    # Setting k innate opinions to 1 moves the mean expressed opinion by c_i (1 - s_i), with
    # c = 1^T (I + L)^-1 / n: linear in the choice, so the best k are the top k of that score.
    sc, s = _musco_network(tmp_path, 14, 5, weighted=True)
    n = 14
    lap = laplacian(n, sc.arrays.src, sc.arrays.dst, sc.arrays.weight)
    c = np.ones(n) @ np.linalg.inv(np.eye(n) + lap) / n
    score = c * (1.0 - s)
    top = set(np.argsort(-score)[:4].tolist())
    result = design(sc, "mean_opinion", "stubborn", 4, hold="innate", steps=200)
    assert set(result.chosen) == top

    def value(chosen):
        y = s.copy()
        y[list(chosen)] = 1.0
        return float(np.mean(np.linalg.solve(np.eye(n) + lap, y)))

    best = max(value(ch) for ch in itertools.combinations(range(n), 4))
    assert result.value == pytest.approx(best, rel=1e-10)


def test_removing_ties_against_every_removal_set(tmp_path):
    g = nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (3, 4), (4, 5), (5, 6), (6, 4), (1, 5)])
    s = np.asarray([0.9, 0.8, 0.1, 0.2, 0.5, 0.05, 0.95])
    fj_scenario(tmp_path / "r.toml", g, s)
    sc = load_scenario(tmp_path / "r.toml")
    result = design(sc, "disagreement", "remove", 2, steps=200)
    a = sc.arrays

    def value(removed):
        w = a.weight.copy()
        w[list(removed)] = 0.0
        return musco(_exact(sc, s, {}, w), a.src, a.dst, w)["disagreement"]

    every = [value(c) for j in range(3) for c in itertools.combinations(range(a.src.size), j)]
    assert result.value == pytest.approx(value(result.chosen), rel=1e-9)
    assert len(result.chosen) <= 2
    # Removing ties is not convex: here the relaxation, rounded, and greedy both stop at a local
    # optimum (0.1669 against the best pair's 0.1342); "up to B" never does worse than removing none.
    assert min(every) - 1e-12 <= result.value <= result.baseline + 1e-12
    assert result.value <= result.heuristics["random"].value + 1e-12
    assert result.value == pytest.approx(result.heuristics["greedy"].value, rel=1e-9)


def test_moving_an_anchor_at_the_equilibrium_against_dense_solves(tmp_path):
    # mean_opinion is increasing in the anchor's opinion: the optimum within a distance B moves it
    # up by B (inside [0, 1]); the value is the dense solve's with the anchor there.
    g = nx.path_graph(8)
    s = np.linspace(0.1, 0.8, 8)
    fj_scenario(tmp_path / "a.toml", g, s, anchor={"node": 0, "state": [0.3], "coupling": 2.0}, agents={"stubbornness": 0.3})
    sc = load_scenario(tmp_path / "a.toml")
    result = design(sc, "mean_opinion", "anchor", 0.25, anchor="position", steps=100)
    w = np.where((sc.arrays.src == 0) | (sc.arrays.dst == 0), 2.0, 1.0)
    theta = np.full(8, 0.3)
    theta[0] = 0.0
    m = np.asarray([1.0, 2, 2, 2, 2, 2, 2, 1])  # inertia: the (raw) weight each node hears
    z = fj_dense(8, sc.arrays.src, sc.arrays.dst, w, s, theta, m, {0: 0.55})
    assert np.asarray(result.variable) == pytest.approx([0.55], abs=1e-9)
    assert result.value == pytest.approx(float(z.mean()), rel=1e-9)
