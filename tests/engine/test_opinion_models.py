"""When the hivemind does not form: competing anchors, stubborn agents, bounded confidence.

Each model is checked against an independent implementation (NDlib's Friedkin–Johnsen,
a plain numpy Hegselmann–Krause) or a closed form (geodesic interpolation between two
anchors, a star with stubborn leaves, a complete graph).
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from hivemind import load_scenario, parse_scenario, simulate
from hivemind.theory import equilibrium, linear_equilibrium

ROOT = Path(__file__).resolve().parents[2]


def toml_list(xs) -> str:
    return "[" + ", ".join(repr(float(x)) for x in xs) + "]"


# ---------------------------------------------------------------------------
# Friedkin–Johnsen against NDlib itself


def ndlib_fj(graph: nx.Graph, x0: dict, theta: dict, iterations: int) -> dict:
    from ndlib.models import ModelConfig
    from ndlib.models.opinions import FJModel

    model = FJModel(graph)
    config = ModelConfig.Configuration()
    for node, t in theta.items():
        config.add_node_configuration("stubbornness", node, t)
    model.set_initial_status(config)
    model.status = dict(x0)
    model.initial_status = dict(x0)
    model.iteration_bunch(iterations + 1, node_status=False)  # NDlib's first iteration only reports the start
    return model.status


def fj_line(graph: nx.Graph, x0: np.ndarray, theta: np.ndarray, anchor: int, steps: int) -> str:
    """R^1, degree inertia, step size 1, float64: the setting in which hivemind's update is FJ's."""
    edges = "[" + ", ".join(f"[{u}, {v}]" for u, v in graph.edges) + "]"
    return f"""
[manifold]
kind = "euclidean"
dim = 1
[graph]
kind = "edges"
n = {len(x0)}
edges = {edges}
[anchor]
node = {anchor}
state = "init"
[init]
kind = "explicit"
states = [{", ".join(f"[{float(v)!r}]" for v in x0)}]
[dynamics]
rule = "gradient"
step_size = 1.0
steps = {steps}
[record]
every = {steps}
[agents]
inertia = "degree"
stubbornness = {toml_list(theta)}
[run]
precision = "float64"
"""


def test_friedkin_johnsen_on_the_real_line_equals_ndlib_to_1e12():
    rng = np.random.default_rng(7)
    graph = nx.barabasi_albert_graph(40, 2, seed=3)
    n = graph.number_of_nodes()
    x0 = rng.uniform(-1, 1, n)
    theta = rng.uniform(0, 1, n)
    theta[0] = 0.0  # node 0 is the anchor: theta = 1 on NDlib's side, infinite inertia on ours
    text = fj_line(graph, x0, theta, 0, 100)
    ours = simulate(parse_scenario(text)).state.isel(seed=0, step=-1, coord=0).values
    theirs = ndlib_fj(graph, dict(enumerate(x0)), {i: (1.0 if i == 0 else t) for i, t in enumerate(theta)}, 100)
    theirs = np.asarray([theirs[i] for i in range(n)])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert np.max(np.abs(ours - x0)) > 0.05  # they did move


def test_friedkin_johnsen_equilibrium_formula_matches_the_run():
    """x* = (I - (I - Theta) W)^-1 Theta x(0), W the row-normalised adjacency, no anchor heard."""
    rng = np.random.default_rng(1)
    graph = nx.connected_watts_strogatz_graph(30, 4, 0.3, seed=2)
    n = 30
    x0 = rng.uniform(-1, 1, n)
    theta = rng.uniform(0.05, 0.9, n)
    adjacency = nx.to_numpy_array(graph, nodelist=range(n))
    w = adjacency / adjacency.sum(1, keepdims=True)
    big_theta = np.diag(theta)
    closed = np.linalg.solve(np.eye(n) - (np.eye(n) - big_theta) @ w, big_theta @ x0)
    # An extra node 30, the anchor, joined to nobody: it changes nothing.
    text = fj_line(graph, np.asarray([*x0, 0.0]), np.asarray([*theta, 0.0]), n, 2000)
    s = parse_scenario(text)
    ran = simulate(s).state.isel(seed=0, step=-1, coord=0).values[:n]
    x_init = np.asarray([*x0, 0.0])[:, None]
    solved = linear_equilibrium(s.arrays, s.anchor_indices, 1.0, x_init, s.stubbornness)[:n, 0]
    np.testing.assert_allclose(solved, closed, atol=1e-12)
    np.testing.assert_allclose(ran, closed, atol=1e-10)


# ---------------------------------------------------------------------------
# Hegselmann–Krause against plain numpy


def numpy_hk(x: np.ndarray, eps: float, steps: int) -> np.ndarray:
    """Synchronous HK: every agent moves to the mean of all agents closer than eps (itself included)."""
    out = [x]
    for _ in range(steps):
        close = np.abs(x[:, None] - x[None, :]) < eps
        x = (close * x[None, :]).sum(1) / close.sum(1)
        out.append(x)
    return np.asarray(out)


def test_shipped_hegselmann_krause_scenario_is_exactly_hk():
    s = load_scenario(ROOT / "scenarios" / "hegselmann_krause.toml")
    ds = simulate(s)
    x = ds.state.isel(seed=0, coord=0).values[:, 1:]  # (steps + 1, 200): node 0 is the bystander anchor
    assert x[0].min() >= 0 and x[0].max() <= 1 and x[0].std() > 0.25  # uniform starts in [0, 1]
    ref = numpy_hk(x[0], s.dynamics.confidence, s.dynamics.steps)
    np.testing.assert_allclose(x, ref, rtol=0, atol=1e-12)
    # The final opinion clusters, counted independently, are the run's cluster count.
    final = np.unique(np.round(ref[-1], 9))
    assert ds.clusters.isel(seed=0, step=-1).item() == final.size
    biggest = max(np.sum(np.isclose(ref[-1], c, atol=1e-9)) for c in final)
    assert ds.largest_cluster_share.isel(seed=0, step=-1).item() == pytest.approx(biggest / 200)


@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_hk_with_other_bounds_and_the_published_behaviour(eps):
    s = load_scenario(ROOT / "scenarios" / "hegselmann_krause.toml", [f"dynamics.confidence={eps}", "dynamics.steps=60"])
    ds = simulate(s)
    x = ds.state.isel(seed=0, coord=0).values[:, 1:]
    np.testing.assert_allclose(x, numpy_hk(x[0], eps, 60), rtol=0, atol=1e-12)
    clusters = ds.clusters.isel(seed=0, step=-1).item()
    if eps >= 0.25:
        assert clusters == 1  # consensus above the threshold near 0.2
    else:
        assert 0.5 / (2 * eps) <= clusters <= 2 / (2 * eps)  # about 1/(2 eps) clusters


def test_deffuant_gossip_never_joins_agents_farther_apart_than_epsilon():
    """Gossip with a confidence bound: two groups that start 0.5 apart with eps = 0.2 never mix."""
    text = """
[manifold]
kind = "euclidean"
dim = 1
[graph]
kind = "complete"
n = 21
[anchor]
node = 0
state = [10.0]
coupling = 0.0
[init]
kind = "explicit"
states = [[10.0], STATES]
[dynamics]
rule = "gossip"
gossip_prob = 0.1
step_size = 0.05
confidence = 0.2
steps = 3000
[record]
every = 3000
[run]
precision = "float64"
"""
    groups = ["[0.0]", "[0.05]", "[0.1]", "[0.15]", "[0.02]"] * 2 + ["[0.6]", "[0.65]", "[0.7]", "[0.62]", "[0.68]"] * 2
    text = text.replace("STATES", ", ".join(groups))
    ds = simulate(parse_scenario(text))
    end = ds.state.isel(seed=0, step=-1, coord=0).values[1:]
    assert np.ptp(end[:10]) < 1e-3 and np.ptp(end[10:]) < 1e-3  # each group agrees ...
    assert end[10:].min() - end[:10].max() > 0.4  # ... and they stay apart
    assert ds.clusters.isel(seed=0, step=-1).item() == 2


# ---------------------------------------------------------------------------
# Several anchors: closed forms on R^n and S^n


def path_between_anchors(kind: str, dim: int, a: list, b: list, n: int = 11) -> str:
    return f"""
[manifold]
kind = "{kind}"
dim = {dim}
[graph]
kind = "path"
n = {n}
[[anchors]]
node = 0
state = {a}
[[anchors]]
node = {n - 1}
state = {b}
[init]
kind = "random"
[dynamics]
step_size = 0.4
steps = 4000
[record]
every = 4000
[run]
precision = "float64"
"""


def test_two_anchors_at_the_ends_of_a_path_spread_agents_evenly_on_r3():
    a, b = np.array([1.0, -2.0, 0.5]), np.array([4.0, 2.0, -1.0])
    s = parse_scenario(path_between_anchors("euclidean", 3, a.tolist(), b.tolist()))
    expected = a + np.linspace(0, 1, 11)[:, None] * (b - a)
    ds = simulate(s)
    np.testing.assert_allclose(ds.state.isel(seed=0, step=-1).values, expected, atol=1e-9)
    x0 = ds.state.isel(seed=0, step=0).values
    np.testing.assert_allclose(linear_equilibrium(s.arrays, s.anchor_indices, [1.0, 1.0], x0), expected, atol=1e-12)
    near = ds.nearest_anchor.isel(seed=0, step=-1).values
    np.testing.assert_array_equal(near[1:10], [0, 0, 0, 0, 0, 1, 1, 1, 1])  # agent 5 sits in the middle: a tie, first wins
    np.testing.assert_allclose(ds.anchor_share.isel(seed=0, step=-1).values, [5 / 9, 4 / 9])


def test_two_anchors_on_the_sphere_place_agents_evenly_on_the_geodesic():
    angle = 2.0  # less than pi apart
    a = [1.0, 0.0, 0.0]
    b = [float(np.cos(angle)), float(np.sin(angle)), 0.0]
    s = parse_scenario(path_between_anchors("sphere", 2, a, b).replace('kind = "random"', 'kind = "cap"\nspread = 0.3'))
    t = np.linspace(0, angle, 11)
    expected = np.stack([np.cos(t), np.sin(t), np.zeros_like(t)], axis=1)
    x0 = simulate(s).state.isel(seed=0, step=0).values
    fixed, iterations, residual = equilibrium(s, x0)
    assert residual < 1e-12
    np.testing.assert_allclose(fixed, expected, atol=1e-9)
    ran = simulate(s).state.isel(seed=0, step=-1).values
    np.testing.assert_allclose(ran, expected, atol=1e-9)


def test_coupling_shifts_the_split_toward_the_stronger_anchor():
    """Harmonic extension with kappa: on a path a - 1 - b with couplings k_a, k_b, x_1 = (k_a a + k_b b) / (k_a + k_b)."""
    text = """
[manifold]
kind = "euclidean"
dim = 1
[graph]
kind = "path"
n = 3
[[anchors]]
node = 0
state = [0.0]
coupling = 3.0
[[anchors]]
node = 2
state = [1.0]
coupling = 1.0
[init]
kind = "random"
[dynamics]
step_size = 0.2
steps = 500
[record]
every = 500
[run]
precision = "float64"
"""
    ds = simulate(parse_scenario(text))
    assert ds.state.isel(seed=0, step=-1, agent=1, coord=0).item() == pytest.approx(0.25, abs=1e-12)
    np.testing.assert_array_equal(ds.is_anchor.values, [1, 0, 1])
    assert ds.distance_to_anchor.isel(seed=0, step=-1, agent=1).item() == pytest.approx(0.25, abs=1e-12)


# ---------------------------------------------------------------------------
# Stubbornness: closed forms


def test_star_with_stubborn_leaves_on_r1():
    """A star whose hub h is free, one leaf the anchor a, the other k leaves stubborn with theta.

    Leaves i (theta, prejudice p_i) hear only the hub: x_i = (1 - theta) h + theta p_i.
    The hub (inertia 1 per edge, degree inertia) hears the anchor and the leaves:
    h = (a + sum_i x_i) / (k + 1). Solving: h = (a + theta sum p) / (1 + k theta).
    """
    k, theta, a = 5, 0.4, 2.0
    p = np.array([-1.0, 0.0, 0.5, 1.0, 3.0])
    hub = (a + theta * p.sum()) / (1 + k * theta)
    leaves = (1 - theta) * hub + theta * p
    states = [[0.0], [a], *[[float(v)] for v in p]]
    text = f"""
[manifold]
kind = "euclidean"
dim = 1
[graph]
kind = "star"
n = {k + 1}
[anchor]
node = 1
state = "init"
[init]
kind = "explicit"
states = {states}
[dynamics]
step_size = 1.0
steps = 400
[record]
every = 400
[agents]
inertia = "degree"
stubbornness = {toml_list([0.0, 0.0, *[theta] * k])}
[run]
precision = "float64"
"""
    s = parse_scenario(text)
    end = simulate(s).state.isel(seed=0, step=-1, coord=0).values
    np.testing.assert_allclose(end[0], hub, atol=1e-12)
    np.testing.assert_allclose(end[2:], leaves, atol=1e-12)
    fixed, _, _ = equilibrium(s, np.asarray(states, float))
    np.testing.assert_allclose(fixed[:, 0], [hub, a, *leaves], atol=1e-10)


def test_complete_graph_with_uniform_stubbornness_and_an_anchor():
    """Complete graph, degree inertia, every agent equally stubborn, one anchor: against the FJ map iterated in numpy."""
    n, theta = 8, 0.3
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(n, 1))
    s = parse_scenario(
        f"""
[manifold]
kind = "euclidean"
dim = 1
[graph]
kind = "complete"
n = {n}
[anchor]
node = 0
state = "init"
[init]
kind = "explicit"
states = {x0.tolist()}
[dynamics]
step_size = 1.0
steps = 300
[record]
every = 300
[agents]
inertia = "degree"
stubbornness = {theta}
[run]
precision = "float64"
"""
    )
    # Independent: iterate the FJ map with the anchor fixed, in numpy, to its fixed point.
    w = (np.ones((n, n)) - np.eye(n)) / (n - 1)
    x = x0[:, 0].copy()
    for _ in range(5000):
        x = np.where(np.arange(n) == 0, x0[0, 0], (1 - theta) * (w @ x) + theta * x0[:, 0])
    end = simulate(s).state.isel(seed=0, step=-1, coord=0).values
    np.testing.assert_allclose(end, x, atol=1e-12)
    np.testing.assert_allclose(linear_equilibrium(s.arrays, s.anchor_indices, 1.0, x0, s.stubbornness)[:, 0], x, atol=1e-12)


def test_stubbornness_on_the_sphere_reaches_the_riemannian_equilibrium():
    s = parse_scenario(
        """
[manifold]
kind = "sphere"
dim = 3
[graph]
kind = "barabasi_albert"
n = 30
params = { m = 2 }
[anchor]
node = 0
[init]
kind = "cap"
spread = 1.0
[dynamics]
step_size = 0.5
steps = 3000
[record]
every = 3000
[agents]
inertia = "degree"
stubbornness = 0.3
[run]
precision = "float64"
"""
    )
    ds = simulate(s)
    fixed, _, residual = equilibrium(s, ds.state.isel(seed=0, step=0).values)
    assert residual < 1e-12
    end = ds.state.isel(seed=0, step=-1).values
    np.testing.assert_allclose(end, fixed, atol=1e-9)
    assert ds.distance_to_anchor.isel(seed=0, step=-1).values[1:].mean() > 0.05  # stubborn agents keep away


def test_stubborn_agents_and_a_bound_work_with_every_rule():
    base = """
[manifold]
kind = "hyperbolic"
dim = 2
[graph]
kind = "cycle"
n = 12
[anchor]
node = 0
[init]
kind = "cap"
spread = 0.5
[dynamics]
rule = "%s"
step_size = 0.05
steps = 200
noise = 0.01
confidence = 2.0
[record]
every = 50
[agents]
stubbornness = 0.2
"""
    for rule in ("gradient", "stochastic", "gossip", "adam"):
        ds = simulate(parse_scenario(base % rule))
        assert np.isfinite(ds.state.values).all(), rule
        assert ds.distance_to_anchor.isel(step=-1).values.max() < ds.distance_to_anchor.isel(step=0).values.max(), rule
