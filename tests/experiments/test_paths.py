"""hivemind paths: the verdict on known cases, and the per-agent distances against numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hivemind.cli import main
from hivemind.engine.manifolds import get_manifold
from hivemind.experiments.paths import RuleSpec, compare_paths, default_tolerance, parse_rules
from hivemind.runner.simulate import anchor_state
from tests.helpers import scenario, scenario_text

FAST = {"rule": "gradient", "step_size": 0.2, "steps": 400}


def run_paths(tmp_path, capsys, *args, **sections):
    path = tmp_path / "s.toml"
    path.write_text(scenario_text(**sections))
    out = tmp_path / "out"
    code = main(["paths", str(path), "--out", str(out), "--formats", "png", *args])
    printed = capsys.readouterr()
    data = json.loads((out / "paths.json").read_text()) if (out / "paths.json").exists() else None
    return code, printed, data


def test_connected_graph_with_decaying_noise_agrees(tmp_path, capsys):
    code, printed, data = run_paths(
        tmp_path,
        capsys,
        "--rules",
        "gradient,stochastic",
        "--seeds",
        "3",
        "--init-seeds",
        "2",
        dynamics={**FAST, "noise": 0.1, "noise_schedule": "exponential", "noise_decay": 30.0},
    )
    assert code == 0, printed.out
    assert "verdict: AGREE" in printed.out
    assert data["verdict"] == "agree" and data["disagreeing"] == []
    assert data["max_gap"] <= data["tol"] and data["max_spread"] <= data["tol"]
    assert len(data["runs"]) == 4 and all(r["seeds"] == [0, 1, 2] for r in data["runs"])
    assert (tmp_path / "out" / "paths.png").stat().st_size > 10_000


def test_agent_without_a_path_to_the_anchor_fails_and_is_named(tmp_path, capsys):
    graph = {"kind": "edges", "n": 5, "edges": [[0, 1], [1, 2], [2, 3], [3, 0]]}  # node 4 is alone
    code, printed, data = run_paths(tmp_path, capsys, "--rules", "gradient", "--seeds", "2", graph=graph, dynamics=FAST)
    assert code == 1
    assert "4 (no path to the anchor)" in printed.out
    assert [d["agent"] for d in data["disagreeing"]] == ["4"]
    assert data["disagreeing"][0]["gap"] is None  # no theoretical endpoint


def test_noise_that_does_not_decay_fails(tmp_path, capsys):
    dyn = {**FAST, "rule": "stochastic", "noise": 0.05, "noise_schedule": "constant"}
    code, printed, data = run_paths(tmp_path, capsys, "--rules", "stochastic", "--seeds", "3", dynamics=dyn)
    assert code == 1
    assert data["agents_disagreeing"] == 5  # every agent keeps jittering
    assert all("endpoints differ" in d["reason"] for d in data["disagreeing"])


def test_run_too_short_to_converge_fails(tmp_path, capsys):
    code, printed, data = run_paths(tmp_path, capsys, "--rules", "gradient", "--seeds", "1", dynamics={**FAST, "steps": 5})
    assert code == 1
    assert "from the anchor's state" in printed.out
    assert data["max_gap"] > data["tol"]


def test_step_size_too_large_fails(tmp_path, capsys):
    # The grounded Laplacian of a 6-cycle has lambda_max = 2 + 2 cos(pi/6) = 3.73, so eta = 0.8
    # gives |1 - eta lambda| = 1.99 > 1: the Euclidean iteration grows without bound.
    code, printed, data = run_paths(
        tmp_path,
        capsys,
        "--rules",
        "gradient",
        "--seeds",
        "1",
        manifold={"kind": "euclidean", "dim": 2},
        dynamics={**FAST, "step_size": 0.8, "steps": 2000},
    )
    assert code == 1
    assert data["agents_disagreeing"] == 5
    assert data["runs"][0]["diverged"] is not None


def test_distances_match_an_independent_numpy_computation():
    s = scenario(manifold={"kind": "sphere", "dim": 3}, dynamics={**FAST, "steps": 30})
    report = compare_paths(s, [RuleSpec("gradient"), RuleSpec("stochastic")], seeds=[0, 1], tol=1.0)
    finals = np.concatenate([r.finals for r in report.runs]).astype(np.float64)  # (4, N, D)
    finals /= np.linalg.norm(finals, axis=-1, keepdims=True)
    cos = np.clip(np.einsum("rnd,snd->rsn", finals, finals), -1, 1)
    np.testing.assert_allclose(report.spread, np.arccos(cos).max(axis=(0, 1)), atol=2e-6)
    a = np.asarray(anchor_state(s, get_manifold("sphere", 3), np.float32), np.float64)
    a /= np.linalg.norm(a)
    gap = np.arccos(np.clip(finals @ a, -1, 1)).max(axis=0)
    np.testing.assert_allclose(report.gap, gap, atol=2e-6)
    assert report.spread[s.anchor_index] == 0 and report.gap[s.anchor_index] < 1e-6


def test_default_tolerance_follows_precision_and_step():
    s32 = scenario(dynamics=FAST)
    tol, why = default_tolerance(s32)
    assert tol == pytest.approx(3 * np.sqrt(np.finfo(np.float32).eps)) and "sqrt(eps)" in why
    # A tiny step lifts the precision floor eps / (eta lambda_min) above 3 sqrt(eps).
    lam_min = 2 - 2 * np.cos(np.pi / 6)  # path of 5 agents grounded at both ends
    tiny = scenario(dynamics={**FAST, "step_size": 1e-5})
    tol, why = default_tolerance(tiny)
    assert tol == pytest.approx(10 * np.finfo(np.float32).eps / (1e-5 * lam_min), rel=1e-6) and "floor" in why


def test_parse_rules():
    assert parse_rules("gradient, adam:0.005") == [RuleSpec("gradient"), RuleSpec("adam", 0.005)]
    for bad in ["nope", "gradient:-1", "adam:x", ""]:
        with pytest.raises(ValueError):
            parse_rules(bad)


def test_bad_rules_flag_is_one_line_exit_2(tmp_path, capsys):
    code, printed, _ = run_paths(tmp_path, capsys, "--rules", "gradient,telepathy")
    assert code == 2
    assert printed.err.count("\n") == 1 and "telepathy" in printed.err


def test_a_second_anchor_is_named_as_the_reason_agents_disagree(tmp_path, capsys):
    path = tmp_path / "two.toml"
    path.write_text(
        scenario_text(anchor=None, graph={"kind": "path", "n": 7}, dynamics={"steps": 600})
        + "[[anchors]]\nnode = 0\n[[anchors]]\nnode = 6\n"
    )
    code = main(["paths", str(path), "--out", str(tmp_path / "out"), "--formats", "png", "--rules", "gradient,gossip"])
    out = capsys.readouterr().out
    assert code == 1
    verdict = out.split("verdict: ")[1]
    assert "DISAGREE" in verdict and "2 anchors (0, 6) pull against each other" in verdict


def test_a_confidence_bound_is_named_as_the_reason_agents_disagree(tmp_path, capsys):
    code, printed, _ = run_paths(
        tmp_path,
        capsys,
        "--rules",
        "gradient",
        manifold={"kind": "euclidean", "dim": 1},
        graph={"kind": "path", "n": 5},
        init={"kind": "explicit", "states": [[0.0], [0.1], [3.0], [3.1], [3.2]]},
        anchor={"state": "init"},
        dynamics={"confidence": 0.5, "steps": 300},
    )
    assert code == 1
    verdict = printed.out.split("verdict: ")[1]
    assert "DISAGREE" in verdict and "dynamics.confidence = 0.5 silences edges" in verdict
    assert verdict.count("(") >= 3  # agents 2, 3 and 4 are named
