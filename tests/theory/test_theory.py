"""Linear theory: spectra against closed forms, predicted rates against measured ones."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from helpers import scenario

from hivemind import simulate
from hivemind.cli import main
from hivemind.engine.topology import graph_arrays
from hivemind.theory import grounded_spectrum, measured_rate, predicted_rate, rate_report


def test_star_around_the_anchor_has_spectrum_kappa():
    # Every leaf hears only the anchor: M^-1 L_g = diag(kappa / m_i).
    g = nx.star_graph(6)
    a = graph_arrays(g, inertia={i: 1.0 + i for i in range(7)})
    lam = grounded_spectrum(a, anchor=0, coupling=2.5)
    np.testing.assert_allclose(np.sort(lam), np.sort([2.5 / (1.0 + i) for i in range(1, 7)]), rtol=1e-12)
    pred = predicted_rate(a, 0, 2.5, step_size=0.1)
    assert pred.rho == pytest.approx(1 - 0.1 * 2.5 / 7) and pred.stable


def test_path_anchored_at_one_end_matches_the_dirichlet_spectrum():
    # Path 0 - 1 - ... - m anchored at 0: eigenvalues 2 - 2 cos((2k - 1) pi / (2m + 1)), k = 1..m.
    m = 9
    lam = grounded_spectrum(graph_arrays(nx.path_graph(m + 1)), anchor=0)
    k = np.arange(1, m + 1)
    np.testing.assert_allclose(np.sort(lam), np.sort(2 - 2 * np.cos((2 * k - 1) * np.pi / (2 * m + 1))), atol=1e-12)


def test_unreachable_agents_are_left_out_and_unstable_steps_are_flagged():
    g = nx.Graph([(0, 1), (1, 2), (3, 4)])
    a = graph_arrays(g)
    assert grounded_spectrum(a, 0).size == 2  # agents 3 and 4 never hear the anchor
    assert not predicted_rate(a, 0, 1.0, step_size=1.5).stable  # 1.5 * lambda_max > 2


def test_measured_rate_recovers_a_known_exponential():
    steps = np.arange(0, 1000, 10)
    d = 3.0 * 0.99**steps
    meas = measured_rate(steps, np.maximum(d, 1e-9), floor=1e-6)
    assert meas.rho == pytest.approx(0.99, rel=1e-9) and meas.r2 > 0.999999
    assert meas.last_step < 1000  # stops at the floor
    assert measured_rate(steps[:5], d[:5], floor=1e-6) is None


@pytest.mark.parametrize(("kind", "tol"), [("euclidean", 1e-6), ("sphere", 0.03), ("hyperbolic", 0.03)])
def test_predicted_rate_matches_the_measured_one(kind, tol):
    # Exact in R^n; on S^n and H^n the linearisation at the anchor, so start near it.
    s = scenario(
        manifold={"kind": kind, "dim": 4},
        graph={"kind": "watts_strogatz", "n": 40, "params": {"k": 4, "p": 0.3}, "seed": 1},
        init={"kind": "cap", "spread": 0.3},
        dynamics={"step_size": 0.2, "steps": 1500},
        record={"every": 5},
        run={"precision": "float64"},
    )
    report = rate_report(simulate(s))
    assert report["measured"]["r2"] > 0.999
    assert report["relative_error"] < tol, report


def test_theory_cli_prints_both_rates(tmp_path, capsys):
    from helpers import scenario_text

    src = tmp_path / "s.toml"
    src.write_text(
        scenario_text(
            manifold={"kind": "euclidean", "dim": 2}, dynamics={"rule": "adam", "steps": 400}, graph={"kind": "path", "n": 5}
        )
    )
    assert main(["theory", str(src)]) == 0
    out = capsys.readouterr().out
    assert "running test with rule gradient, not adam" in out
    lam = 2 - 2 * math.cos(math.pi / 9)  # path of 4 agents anchored at one end: k = 1, m = 4
    assert f"lambda_min {lam:.6g}" in out
    assert "predicted: x" in out and "measured:  x" in out and "relative error" in out
