"""Group couplings (who pulls whom) recovered from engine-made data with a known asymmetric matrix.

The data are written by a numpy step of our own (the sphere's Exp and Log in closed form, as in
test_forecast), so a transposed matrix, a swapped hearer and speaker or a wrong normalisation show.
"""

from __future__ import annotations

import numpy as np
import pytest

from hivemind.theory import forecast as fc
from hivemind.theory import groups as gr
from hivemind.theory.dynamics_fit import peer_topology
from tests.theory.test_forecast import _log, _noisy, exp

N, D = 24, 10
# eta[hearer's group, speaker's group]: group "b" pulls group "a" eight times harder than the reverse.
ETA = np.array([[0.10, 0.40], [0.05, 0.20]])
KAPPA = np.array([0.04, 0.10])


def mixed_graph(n=N, seed=3):
    """A random 4-regular-ish directed graph on which the two groups (alternating agents) mix."""
    rng = np.random.default_rng(seed)
    src, dst = [], []
    for i in range(n):
        for j in rng.choice([k for k in range(n) if k != i], 4, replace=False):
            src.append(int(j))
            dst.append(i)
    return np.asarray(src), np.asarray(dst)


def engine_made(rounds, eta=ETA, kappa=KAPPA, sigma=0.04, tau=0.02, seed=0, n=N, d=D):
    rng = np.random.default_rng(seed)
    src, dst = mixed_graph(n)
    group = np.arange(n) % 2
    anchor = np.eye(d)[0]
    x = rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    deg = np.bincount(dst, minlength=n)
    ys = [_noisy(rng, x, tau)]
    for _ in range(rounds):
        logs = _log(x[dst], x[src]) * (eta[group[dst], group[src]] / deg[dst])[:, None]
        pull = np.zeros_like(x)
        np.add.at(pull, dst, logs)
        x = _noisy(rng, exp(x, pull + kappa[group][:, None] * _log(x, anchor)), sigma)
        ys.append(_noisy(rng, x, tau))
    return np.stack(ys), anchor, src, dst, np.where(group == 0, "a", "b")


@pytest.mark.slow
def test_an_asymmetric_coupling_matrix_is_recovered_with_intervals_that_hold_it():
    y, anchor, src, dst, group = engine_made(30)
    topo = peer_topology(N, src, dst, directed=True)
    out = gr.fit_groups(y, anchor, topo, src, dst, group, train=24, resamples=40, seed=1)
    p, iv = out["params"], out["intervals"]
    assert p["groups"] == ["a", "b"]
    eta = np.asarray(p["group_coupling"])
    np.testing.assert_allclose(eta, ETA, rtol=0.3, atol=0.03)
    assert [p["anchor_coupling"][k] for k in "ab"] == pytest.approx(KAPPA, rel=0.3, abs=0.02)
    held = [iv["group_coupling"][a][b][0] <= ETA[a, b] <= iv["group_coupling"][a][b][1] for a in range(2) for b in range(2)]
    held += [iv["anchor_coupling"][k][0] <= v <= iv["anchor_coupling"][k][1] for k, v in zip("ab", KAPPA, strict=True)]
    assert sum(held) >= 5, iv
    (dom,) = out["dominance"]
    assert dom["stronger"] == "b" and dom["weaker"] == "a"
    assert dom["ratio"] == pytest.approx(ETA[0, 1] / ETA[1, 0], rel=0.5)
    assert dom["interval"][0] > 1.0  # b's dominance is resolved, not only its point estimate
    assert out["one_step"]["skill_vs_persistence"] > 0
    text = "\n".join(gr.describe(out))
    assert "b pulls a" in text and "times harder than the reverse (90% interval" in text


def test_one_group_is_the_peer_model_of_the_forecast_module():
    """With every agent in one group the model is forecast's peer model: the same fit, written twice."""
    y, anchor, src, dst, _ = engine_made(16, eta=np.full((2, 2), 0.3), kappa=np.full(2, 0.06), seed=4)
    topo = peer_topology(N, src, dst, directed=True)
    out = gr.fit_groups(y, anchor, topo, src, dst, ["all"] * N, train=10)
    peer = fc.fit(y, anchor, topo, "peer", 10)
    assert out["params"]["group_coupling"][0][0] == pytest.approx(peer.params["peer_coupling"], rel=1e-3)
    assert out["params"]["anchor_coupling"]["all"] == pytest.approx(peer.params["anchor_coupling"], rel=1e-3)
    assert out["params"]["gain"] == pytest.approx(peer.params["gain"], rel=1e-3)
    assert out["train_mse"] == pytest.approx(peer.train_mse, rel=1e-6)
    assert out["dominance"] == []


def test_the_held_out_score_is_recomputed_from_the_forecasts():
    y, anchor, src, dst, group = engine_made(12, seed=7)
    topo = peer_topology(N, src, dst, directed=True)
    out = gr.fit_groups(y, anchor, topo, src, dst, group)
    pred = gr.predict(y, anchor, topo, group, out["params"])
    cos = np.clip(np.sum(pred[6:] * y[7:], -1), -1, 1)
    assert out["one_step"]["mse"] == pytest.approx(np.mean(np.arccos(cos) ** 2), rel=1e-6)
    with pytest.raises(ValueError, match="one group per agent"):
        gr.fit_groups(y, anchor, topo, src, dst, group[:-1])


def test_hivemind_fit_reads_agent_groups_from_a_netcdf_file(tmp_path, capsys):
    import json

    from hivemind.cli import main
    from hivemind.io.trajectories import load, write

    y, anchor, src, dst, group = engine_made(10, seed=11)
    path = write(tmp_path / "mixed.nc", y, anchor, src, dst, group=group)
    assert load(path)[0].group == tuple(group)
    assert main(["fit", str(path), "--out", str(tmp_path / "fit"), "--resamples", "3"]) == 0
    assert "times harder than the reverse" in (tmp_path / "fit" / "report.txt").read_text()
    doc = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert doc["groups"]["params"]["groups"] == ["a", "b"]
    assert np.shape(doc["groups"]["intervals"]["group_coupling"]) == (2, 2, 2)


def test_a_pull_below_the_resolution_gives_a_lower_bound_not_an_infinite_ratio():
    y, anchor, src, dst, group = engine_made(16, eta=np.array([[0.25, 0.0], [0.35, 0.2]]), seed=2, sigma=0.02, tau=0.0)
    topo = peer_topology(N, src, dst, directed=True)
    out = gr.fit_groups(y, anchor, topo, src, dst, group, train=12)
    (dom,) = out["dominance"]
    assert dom["stronger"] == "a" and dom["measurable"] and dom["lower_bound"]
    assert dom["pull_of_weaker"] < gr.RESOLUTION and dom["pull_of_stronger"] == pytest.approx(0.35, rel=0.2)
    assert dom["ratio"] == pytest.approx(dom["pull_of_stronger"] / gr.RESOLUTION)
    assert "a pulls b at least" in "\n".join(gr.describe(out))
