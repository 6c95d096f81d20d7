"""Scale: the numpy scale-free generator, degree inertia, no recompilation, and the bench harness."""

from __future__ import annotations

import json
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

from hivemind.runner.simulate import advance, simulate
from hivemind.scenario import graphs
from tests.helpers import scenario, scenario_text


def _degrees(src, dst, n):
    return np.bincount(src, minlength=n) + np.bincount(dst, minlength=n)


def test_preferential_attachment_matches_networkx_barabasi_albert_in_distribution():
    n, m = 20_000, 3
    ours = graphs.preferential_attachment(n, m, seed=1)
    assert not np.any(ours.src == ours.dst)
    lo, hi = np.minimum(ours.src, ours.dst), np.maximum(ours.src, ours.dst)
    assert np.unique(lo * n + hi).size == ours.src.size  # simple graph
    expected_edges = m + (n - m - 1) * m
    assert expected_edges - ours.src.size < 1e-3 * expected_edges  # only rare repeats dropped
    # Every node after the seed star links to at most m, and at least one, earlier node.
    later = np.bincount(np.maximum(ours.src, ours.dst), minlength=n)[m + 1 :]
    assert later.max() == m and later.min() >= 1
    deg = _degrees(ours.src, ours.dst, n)
    ref = np.array([d for _, d in nx.barabasi_albert_graph(n, m, seed=1).degree()])
    # Degree tails P(K >= k): the analytic m(m+1)/(k(k+1)) and networkx's, both within sampling noise.
    for k in (6, 12, 24, 48):
        ours_tail, ref_tail = np.mean(deg >= k), np.mean(ref >= k)
        assert ours_tail == pytest.approx(ref_tail, rel=0.2)
        assert ours_tail == pytest.approx(m * (m + 1) / (k * (k + 1)), rel=0.3)


def test_preferential_attachment_is_seeded_and_refuses_bad_m():
    a, b = graphs.preferential_attachment(500, 2, 7), graphs.preferential_attachment(500, 2, 7)
    np.testing.assert_array_equal(a.dst, b.dst)
    assert not np.array_equal(a.dst, graphs.preferential_attachment(500, 2, 8).dst)
    with pytest.raises(graphs.GraphError):
        graphs.preferential_attachment(5, 5, 0)


def test_scenario_builds_preferential_attachment_without_networkx_and_degree_inertia():
    s = scenario(
        graph={"kind": "preferential_attachment", "n": 300, "params": {"m": 2}},
        agents={"inertia": "degree"},
    )
    g = nx.Graph()
    g.add_edges_from(zip(s.arrays.src.tolist(), s.arrays.dst.tolist(), strict=True))
    np.testing.assert_array_equal(s.arrays.inertia, [g.degree(i) for i in range(300)])


def test_degree_inertia_counts_what_a_node_hears_on_directed_graphs():
    s = scenario(graph={"kind": "edges", "n": 3, "directed": True, "edges": [[0, 1, 2.0], [2, 1, 0.5], [1, 2]]})
    assert list(s.arrays.inertia) == [1.0, 1.0, 1.0]
    s = scenario(
        graph={"kind": "edges", "n": 3, "directed": True, "edges": [[0, 1, 2.0], [2, 1, 0.5], [1, 2]]},
        agents={"inertia": "degree"},
    )
    assert list(s.arrays.inertia) == [1.0, 2.5, 1.0]  # node 0 hears no one: 1


def test_changing_numbers_does_not_recompile():
    base = dict(graph={"kind": "cycle", "n": 12}, dynamics={"rule": "stochastic", "noise": 0.01, "step_size": 0.1, "steps": 20})
    simulate(scenario(**base, run={"seeds": [0, 1]}))
    before = advance._cache_size()
    for step, noise, seeds in [(0.05, 0.02, [3, 4]), (0.2, 0.0, [5, 6])]:
        dyn = {**base["dynamics"], "step_size": step, "noise": noise}
        simulate(scenario(graph=base["graph"], dynamics=dyn, run={"seeds": seeds}))
    assert advance._cache_size() == before


def test_bench_quick_agrees_and_writes_its_files(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "hivemind.cli", "bench", "--quick", "--out", str(out)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "implementations agree" in proc.stdout
    result = json.loads((out / "bench.json").read_text())
    assert (out / "bench.png").stat().st_size > 10_000
    assert result["agree"] and result["max_disagreement"] < 1e-4
    assert {r["n"] for r in result["sizes"]} == {300, 1_000, 3_000}
    assert all(ens["max_diff"] < 1e-6 for ens in result["ensembles"])  # vmapped = looped, to float32 ulps
    assert result["kernel"] is not None  # geomstats is installed by make test
    names = [g["goal"] for g in result["goals"]]
    assert any("numpy (np.add.at)" in n for n in names) and any("peak memory" in n for n in names)


def test_bench_refuses_bad_sizes_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "hivemind.cli", "bench", "--sizes", "ten"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--sizes" in proc.stderr


def test_inertia_string_other_than_degree_is_refused():
    from hivemind.scenario import ScenarioError, parse_scenario

    with pytest.raises(ScenarioError, match="agents.inertia"):
        parse_scenario(scenario_text(agents={"inertia": "mass"}))
