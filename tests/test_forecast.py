"""Forecast models fitted by the one-step loss: recovery from engine-made data, skill against the
baselines, a random walk that no model beats, and `hivemind fit` on files good and bad.

Engine-made data here is written with a step of our own in numpy (the sphere's Exp and Log in
closed form), not with the module's step, so a wrong sign or a swapped coupling would show.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hivemind.cli import main
from hivemind.io.trajectories import DataError, load, write
from hivemind.theory import forecast as fc
from hivemind.theory.dynamics_fit import peer_topology

N, D = 24, 12


def _log(x, y):
    """Log_x(y) on the unit sphere, row by row."""
    c = np.clip(np.sum(x * y, -1, keepdims=True), -1.0, 1.0)
    u = y - c * x
    norm = np.linalg.norm(u, axis=-1, keepdims=True)
    return np.where(norm > 1e-15, np.arccos(c) * u / np.where(norm > 1e-15, norm, 1.0), 0.0)


def _exp(x, v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.cos(n) * x + np.where(n > 1e-15, np.sin(n) / np.where(n > 1e-15, n, 1.0), 1.0) * v


def ring(n=N):
    src = np.concatenate([np.arange(n), (np.arange(n) + 1) % n])
    dst = np.concatenate([(np.arange(n) + 1) % n, np.arange(n)])
    return src, dst


def engine_made(rounds, eta, kappa, theta, gamma, sigma, seed=0, n=N, d=D):
    """Trajectories of the attractor model with process noise, on a ring, anchor e0, attractor e1."""
    rng = np.random.default_rng(seed)
    src, dst = ring(n)
    anchor, z = np.eye(d)[0], np.eye(d)[1]
    y0 = rng.normal(size=(n, d))
    y0 /= np.linalg.norm(y0, axis=1, keepdims=True)
    x, ys = y0.copy(), [y0]
    for _ in range(rounds):
        pull = np.zeros_like(x)
        np.add.at(pull, dst, _log(x[dst], x[src]))
        v = eta * pull / 2 + kappa * _log(x, anchor) + theta * _log(x, y0) + gamma * _log(x, np.broadcast_to(z, x.shape))
        x = _exp(x, v)
        xi = rng.normal(size=x.shape)
        x = _exp(x, sigma * (xi - np.sum(xi * x, -1, keepdims=True) * x))
        ys.append(x)
    return np.stack(ys), anchor, z, src, dst


@pytest.fixture(scope="module")
def made():
    y, anchor, z, src, dst = engine_made(40, eta=0.3, kappa=0.05, theta=0.1, gamma=0.08, sigma=0.05)
    topo = peer_topology(N, src, dst, directed=True)
    return y, anchor, z, src, dst, topo


@pytest.mark.slow
def test_the_attractor_model_recovers_every_parameter(made):
    y, anchor, z, src, dst, topo = made
    best, intervals = fc.block_bootstrap(y, anchor, topo, "attractor", train=30, resamples=60, seed=1)
    p = best.params
    truth = {"peer_coupling": 0.3, "anchor_coupling": 0.05, "stubbornness": 0.1, "attractor_coupling": 0.08, "noise": 0.05}
    for k, v in truth.items():
        assert p[k] == pytest.approx(v, rel=0.25, abs=0.01), k
    assert float(np.dot(p["attractor"], z)) > 0.97
    # The block bootstrap's 90% intervals hold the truth (a weak check of calibration: one dataset).
    covered = sum(lo <= truth[k] <= hi for k, (lo, hi) in intervals.items())
    assert covered >= 4, intervals


def test_the_true_model_forecasts_better_than_the_baselines_and_wrong_models(made):
    y, anchor, z, src, dst, topo = made
    out = fc.fit_all(y, anchor, topo, src, dst, train=30)
    skill = {m: out["models"][m]["one_step"]["skill_vs_persistence"] for m in fc.MODELS}
    assert skill["attractor"] > 0.1
    assert skill["attractor"] > skill["fj"] > skill["anchor"] and skill["attractor"] > skill["peer"]
    assert out["best"] == "attractor"
    one = out["models"]["attractor"]["one_step"]
    assert all(one[f"skill_vs_{b}"] > 0 for b in fc.BASELINES)
    # AIC agrees here, although the attractor's point costs D - 1 = 11 parameters.
    assert out["models"]["attractor"]["n_params"] == 4 + 1 + (D - 1)
    assert out["models"]["attractor"]["aic"] < min(out["models"][m]["aic"] for m in ("anchor", "peer", "fj"))
    # The model's one-step MSE is what it says: recomputed here from its own prediction.
    f = fc.fit(y, anchor, topo, "attractor", 30)
    pred = fc.predict(y, anchor, topo, f, np.arange(30, 40))
    cos = np.clip(np.sum(pred * y[31:], -1), -1, 1)
    assert one["mse"] == pytest.approx(np.mean(np.arccos(cos) ** 2), rel=1e-6)


def test_the_baselines_by_hand():
    """Persistence, neighbours' normalised mean, the centroid and the anchor on a three-agent path."""
    y = np.zeros((2, 3, 3))
    y[0] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    y[1] = y[0]
    anchor = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    src, dst = np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1])  # the path 0 - 1 - 2
    b = fc.baselines(y, anchor, src, dst, [0])
    np.testing.assert_allclose(b["persistence"][0], y[0])
    np.testing.assert_allclose(b["neighbours"][0], [[0, 1, 0], [1 / np.sqrt(2), 0, 1 / np.sqrt(2)], [0, 1, 0]])
    np.testing.assert_allclose(b["centroid"][0], np.full((3, 3), 1 / np.sqrt(3)))
    np.testing.assert_allclose(b["anchor"][0], np.broadcast_to(anchor, (3, 3)))


def test_no_model_beats_persistence_on_a_random_walk():
    y, anchor, _, src, dst = engine_made(30, eta=0.0, kappa=0.0, theta=0.0, gamma=0.0, sigma=0.08, seed=3)
    topo = peer_topology(N, src, dst, directed=True)
    out = fc.fit_all(y, anchor, topo, src, dst, train=20)
    for m, e in out["models"].items():
        assert e["one_step"]["skill_vs_persistence"] < 0.02, m
    assert out["baselines"]["persistence"] < min(out["baselines"][b] for b in ("neighbours", "centroid", "anchor"))


def test_hivemind_fit_on_a_netcdf_file(made, tmp_path, capsys):
    y, anchor, z, src, dst, topo = made
    path = write(tmp_path / "conversation.nc", 3.0 * y, anchor, src, dst)  # any length: hivemind normalises
    assert main(["fit", str(path), "--out", str(tmp_path / "fit"), "--resamples", "0", "--train", "30"]) == 0
    out = capsys.readouterr().out
    assert "best held-out one-step model: attractor" in out and "vs neighbours" in out
    doc = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert doc["best"] == "attractor" and set(doc["models"]) == set(fc.MODELS)
    for key in ("skill_vs_persistence", "skill_vs_neighbours", "skill_vs_centroid", "skill_vs_anchor", "mse"):
        assert key in doc["models"]["peer"]["one_step"]
    assert {"peer_coupling", "anchor_coupling", "stubbornness", "attractor_coupling", "noise"} <= set(
        doc["models"]["fj"]["params"]
    )
    assert (tmp_path / "fit" / "fit.png").stat().st_size > 0


def test_without_anchor_or_edges_everyone_hears_everyone(made, tmp_path):
    y, *_ = made
    [t] = load(write(tmp_path / "plain.nc", y[:6, :8]))
    assert t.anchor is None and len(t.src) == 8 * 7
    from hivemind.fitting import fit

    res = fit(t, resamples=0)[""]
    assert "anchor" not in res["models"] and "anchor" not in res["baselines"]
    assert res["models"]["peer"]["params"]["anchor_coupling"] == 0.0


def test_hivemind_fit_on_a_live_run(tmp_path, capsys):
    from test_live import scenario

    from hivemind.live.backend import FakeBackend
    from hivemind.live.run import run_live

    run_live(scenario(overrides=["live.rounds=4"]), tmp_path / "live", backend=FakeBackend(), say=lambda s: None)
    assert main(["fit", str(tmp_path / "live"), "--out", str(tmp_path / "fit"), "--resamples", "5"]) == 0
    doc = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert set(doc["decodings"]) == {"greedy", "stochastic"}
    res = doc["decodings"]["greedy"]
    assert res["agents"] == 4 and res["rounds"] == 4 and "intervals" in res["models"]["peer"]
    # The graph in live.nc is the agents' path 1-2-3-4 (the anchor left out): 3 edges, both ways.
    [t, _] = load(tmp_path / "live")
    assert sorted(zip(t.src.tolist(), t.dst.tolist(), strict=True)) == [(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)]


@pytest.mark.parametrize(
    "breakage, variable",
    [
        ("nan", "embedding"),
        ("dims", "embedding"),
        ("edge", "edge_dst"),
        ("one_round", "embedding"),
        ("zero", "embedding"),
        ("anchor_nan", "anchor"),
        ("half_edges", "edge_src"),
        ("missing", "embedding"),
    ],
)
def test_bad_data_is_one_line_naming_the_variable(breakage, variable, tmp_path, capsys):
    import xarray as xr

    rng = np.random.default_rng(0)
    y = rng.normal(size=(5, 4, 3))
    src, dst = np.array([0, 1, 2]), np.array([1, 2, 3])
    anchor = np.array([1.0, 0.0, 0.0])
    if breakage == "nan":
        y[2, 1, 0] = np.nan
    if breakage == "edge":
        dst = np.array([1, 2, 9])
    if breakage == "one_round":
        y = y[:1]
    if breakage == "zero":
        y[3, 2] = 0.0
    if breakage == "anchor_nan":
        anchor = np.array([np.nan, 0.0, 0.0])
    path = write(tmp_path / "bad.nc", y, anchor, src, dst)
    if breakage == "dims":
        xr.Dataset({"embedding": (("agent", "round", "coord"), y)}).to_netcdf(path, engine="h5netcdf")
    if breakage == "half_edges":
        xr.Dataset({"embedding": (("round", "agent", "coord"), y), "edge_src": (("edge",), src)}).to_netcdf(
            path, engine="h5netcdf"
        )
    if breakage == "missing":
        xr.Dataset({"other": (("round",), y[:, 0, 0])}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(DataError) as e:
        load(path)
    assert str(e.value).startswith(f"{path}: {variable}") and "\n" not in str(e.value)
    assert main(["fit", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: {variable}") and err.count("\n") == 1
