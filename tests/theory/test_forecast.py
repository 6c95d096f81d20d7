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


def exp(x, v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.cos(n) * x + np.where(n > 1e-15, np.sin(n) / np.where(n > 1e-15, n, 1.0), 1.0) * v


def ring(n=N):
    src = np.concatenate([np.arange(n), (np.arange(n) + 1) % n])
    dst = np.concatenate([(np.arange(n) + 1) % n, np.arange(n)])
    return src, dst


def _noisy(rng, x, s):
    xi = rng.normal(size=x.shape)
    return exp(x, s * (xi - np.sum(xi * x, -1, keepdims=True) * x))


def engine_made(rounds, eta, kappa, theta, gamma, sigma, tau=0.0, seed=0, n=N, d=D, eps=None):
    """Trajectories of the attractor model on a ring, anchor e0, attractor e1: hidden states with
    process noise sigma, observed through observation noise tau. The stubbornness target is each
    agent's first observed message; ``eps`` weighs each message by exp(-(d / eps)^4)."""
    rng = np.random.default_rng(seed)
    src, dst = ring(n)
    anchor, z = np.eye(d)[0], np.eye(d)[1]
    x = rng.normal(size=(n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    first = _noisy(rng, x, tau)
    ys = [first]
    for _ in range(rounds):
        logs = _log(x[dst], x[src])
        w = 1.0 if eps is None else np.exp(-((np.linalg.norm(logs, axis=-1, keepdims=True) / eps) ** 4))
        pull = np.zeros_like(x)
        np.add.at(pull, dst, w * logs)
        v = eta * pull / 2 + kappa * _log(x, anchor) + theta * _log(x, first) + gamma * _log(x, np.broadcast_to(z, x.shape))
        x = _noisy(rng, exp(x, v), sigma)
        ys.append(_noisy(rng, x, tau))
    return np.stack(ys), anchor, z, src, dst


TRUTH = {"peer_coupling": 0.3, "anchor_coupling": 0.05, "stubbornness": 0.1, "attractor_coupling": 0.08}


@pytest.fixture(scope="module")
def made():
    y, anchor, z, src, dst = engine_made(40, eta=0.3, kappa=0.05, theta=0.1, gamma=0.08, sigma=0.05)
    topo = peer_topology(N, src, dst, directed=True)
    return y, anchor, z, src, dst, topo


@pytest.mark.slow
def test_the_attractor_model_recovers_every_parameter_under_both_noises():
    y, anchor, z, src, dst = engine_made(40, eta=0.3, kappa=0.05, theta=0.1, gamma=0.08, sigma=0.05, tau=0.04, seed=5)
    topo = peer_topology(N, src, dst, directed=True)
    best, intervals = fc.bootstrap(y, anchor, topo, "attractor", train=30, resamples=40, seed=1)
    p = best.params
    truth = {**TRUTH, "noise": 0.05, "observation_noise": 0.04}
    for k, v in truth.items():
        assert p[k] == pytest.approx(v, rel=0.25, abs=0.01), k
    assert float(np.dot(p["attractor"], z)) > 0.97
    covered = sum(intervals[k][0] <= v <= intervals[k][1] for k, v in truth.items())
    assert covered >= 5, intervals
    # Observation noise is not process noise: the model without it (gain 1) forecasts worse.
    assert p["gain"] < 0.9


def test_the_true_model_forecasts_better_than_the_baselines_and_wrong_models(made):
    y, anchor, z, src, dst, topo = made
    out = fc.fit_all(y, anchor, topo, src, dst, train=30)
    skill = {m: out["models"][m]["one_step"]["skill_vs_persistence"] for m in fc.MODELS}
    assert skill["attractor"] > 0.1
    assert skill["attractor"] > skill["fj"] > skill["anchor"] and skill["attractor"] > skill["peer"] > skill["copy"]
    assert out["best"] == "attractor" and not out["deterministic_decoder"]["detected"]
    one = out["models"]["attractor"]["one_step"]
    assert all(one[f"skill_vs_{b}"] > 0 for b in fc.BASELINES)
    # Couplings, sigma, tau and the point's D - 1 coordinates; AIC agrees here despite them.
    assert out["models"]["attractor"]["n_params"] == 4 + 2 + (D - 1)
    assert out["models"]["attractor"]["aic"] < min(out["models"][m]["aic"] for m in ("anchor", "peer", "fj"))
    # Without observation noise in the data, none is fitted.
    assert out["models"]["attractor"]["params"]["observation_noise"] < 0.01
    # The model's one-step MSE is what it says: recomputed here from its own prediction.
    f = fc.fit(y, anchor, topo, "attractor", 30)
    pred = fc.predict(y, anchor, topo, f, np.arange(30, 40))
    cos = np.clip(np.sum(pred * y[31:], -1), -1, 1)
    assert one["mse"] == pytest.approx(np.mean(np.arccos(cos) ** 2), rel=1e-6)


def test_bounded_confidence_is_recovered_and_beats_plain_averaging():
    y, anchor, _, src, dst = engine_made(30, eta=0.6, kappa=0.0, theta=0.0, gamma=0.0, sigma=0.03, seed=2, eps=0.8, d=4)
    topo = peer_topology(N, src, dst, directed=True)
    out = fc.fit_all(y, None, topo, src, dst, train=20, models=("peer", "confidence"))
    conf = out["models"]["confidence"]
    assert conf["params"]["confidence"] == pytest.approx(0.8, rel=0.25)
    assert conf["params"]["peer_coupling"] == pytest.approx(0.6, rel=0.25)
    assert conf["one_step"]["skill_vs_persistence"] > out["models"]["peer"]["one_step"]["skill_vs_persistence"]


def test_copy_rates_and_the_deterministic_gate():
    """Agents that repeat themselves, copy a neighbour or write anew with known probabilities; and a
    deterministic 'decoder' (a fixed function of an agent's own and its neighbours' messages)."""
    rng = np.random.default_rng(4)
    n, d, rounds = 40, 6, 60
    src, dst = ring(n)
    x = unit_rows(rng.normal(size=(n, d)))
    ys, counts = [x], {"repeat_rate": 0, "copy_rate": 0, "new_rate": 0}
    for _ in range(rounds):
        u = rng.uniform(size=n)
        left = np.roll(x, 1, axis=0)
        new = unit_rows(rng.normal(size=(n, d)))
        # Copying a neighbour who already wrote one's own text leaves the text as it was: a repeat.
        same = np.all(left == x, axis=1)
        counts["repeat_rate"] += int(np.sum((u < 0.5) | ((u < 0.8) & same)))
        counts["copy_rate"] += int(np.sum((u >= 0.5) & (u < 0.8) & ~same))
        counts["new_rate"] += int(np.sum(u >= 0.8))
        x = np.where((u < 0.5)[:, None], x, np.where((u < 0.8)[:, None], left, new))
        ys.append(x)
    y = np.stack(ys)
    rates = fc.copy_rates(y, src, dst, np.ones(rounds))
    for k, c in counts.items():
        assert rates[k] == pytest.approx(c / (n * rounds), abs=1e-12), k
    assert abs(rates["new_rate"] - 0.2) < 4 * np.sqrt(0.2 * 0.8 / (n * rounds))
    assert not fc.deterministic(y, src, dst, rounds)["detected"]

    # Deterministic: the next message is a fixed function of the prompt (own and both neighbours'
    # messages): the one of the three with the smallest first coordinate. Agents whose
    # neighbourhood holds the smallest message already stop changing, and so do their prompts.
    x = unit_rows(rng.normal(size=(n, d)))
    ys = [x]
    for _ in range(12):
        three = np.stack([x, np.roll(x, 1, axis=0), np.roll(x, -1, axis=0)])
        x = three[np.argmin(three[..., 0], axis=0), np.arange(n)]
        ys.append(x)
    y = np.stack(ys)
    decoder = fc.deterministic(y, src, dst, 10)
    assert decoder["detected"] and decoder["unchanged_prompts"] > 0
    open_ = fc.gate(y, src, dst)
    topo = peer_topology(n, src, dst, directed=True)
    f = fc.fit(y, None, topo, "peer", 10, open_=open_)
    pred = fc.predict(y, None, topo, f, np.arange(12), open_=open_)
    closed = ~open_
    np.testing.assert_allclose(pred[closed], y[1:][closed], atol=1e-12)


@pytest.mark.slow
def test_parametric_intervals_cover_the_truth_in_a_small_study():
    """A small version of analysis/forecast_calibration.py: 6 conversations of the fj model with
    both noises, the 90 % parametric intervals of eta, kappa, theta, sigma and tau."""
    truth = {"peer_coupling": 0.3, "anchor_coupling": 0.06, "stubbornness": 0.08, "noise": 0.06, "observation_noise": 0.04}
    hits = []
    for seed in range(6):
        y, anchor, _, src, dst = engine_made(
            16, eta=0.3, kappa=0.06, theta=0.08, gamma=0.0, sigma=0.06, tau=0.04, seed=100 + seed, n=16, d=8
        )
        topo = peer_topology(16, src, dst, directed=True)
        _, iv = fc.bootstrap(y, anchor, topo, "fj", 10, resamples=40, seed=seed)
        hits += [iv[k][0] <= v <= iv[k][1] for k, v in truth.items()]
    # 30 intervals at 90 %: fewer than 21 hits has probability below 1e-3 if they are calibrated.
    assert np.mean(hits) >= 0.7, np.mean(hits)


def unit_rows(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


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
    # 40 rounds on the ring of 24, as the fixture: the same shapes, the same compiled functions.
    y, anchor, _, src, dst = engine_made(40, eta=0.0, kappa=0.0, theta=0.0, gamma=0.0, sigma=0.08, seed=3)
    topo = peer_topology(N, src, dst, directed=True)
    out = fc.fit_all(y, anchor, topo, src, dst, train=30)
    for m, e in out["models"].items():
        assert e["one_step"]["skill_vs_persistence"] < 0.02, m
    assert out["baselines"]["persistence"] < min(out["baselines"][b] for b in ("neighbours", "centroid", "anchor"))


def test_hivemind_fit_on_a_netcdf_file(made, tmp_path, capsys):
    y, anchor, z, src, dst, topo = made
    path = write(tmp_path / "conversation.nc", 3.0 * y, anchor, src, dst)  # any length: hivemind normalises
    assert main(["fit", str(path), "--out", str(tmp_path / "fit"), "--resamples", "0", "--train", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("verdict: one conversation, 24 agents, 40 rounds; best on training data: attractor (highest one-step")
    assert "vs copy-the-neighbours" in out
    full = (tmp_path / "fit" / "report.txt").read_text()  # the full table: every model, every baseline
    assert "best on training data alone: attractor (highest one-step skill against persistence on training" in full
    assert "vs neighbours" in full
    doc = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert doc["best"] == "attractor" and set(doc["models"]) == set(fc.MODELS)
    for key in ("skill_vs_persistence", "skill_vs_neighbours", "skill_vs_centroid", "skill_vs_anchor", "mse"):
        assert key in doc["models"]["peer"]["one_step"]
    assert {"peer_coupling", "anchor_coupling", "stubbornness", "attractor_coupling", "noise", "observation_noise"} <= set(
        doc["models"]["fj"]["params"]
    )
    assert (tmp_path / "fit" / "fit.png").stat().st_size > 0


def test_without_anchor_or_edges_everyone_hears_everyone(made, tmp_path):
    y, *_ = made
    [t] = load(write(tmp_path / "plain.nc", y[:6, :8]))
    assert t.anchor is None and len(t.src) == 8 * 7
    from hivemind.live.forecast import fit

    res = fit(t, resamples=0)[""]
    assert "anchor" not in res["models"] and "anchor" not in res["baselines"]
    assert res["models"]["peer"]["params"]["anchor_coupling"] == 0.0


def test_hivemind_fit_on_a_live_run(tmp_path, capsys):
    from hivemind.live.backends import FakeBackend
    from hivemind.live.run import run_live
    from tests.live.test_live import scenario

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


def test_heldout_rounds_cannot_move_a_fit_or_the_choice(made):
    """Every held-out round replaced by other directions: every fitted parameter, the training
    loss, the AIC and the model called best stay bit for bit; the held-out scores move."""
    y, anchor, z, src, dst, topo = made
    train = 30
    a = fc.fit_all(y, anchor, topo, src, dst, train=train, models=("anchor", "peer", "attractor"))
    other = y.copy()
    noise = np.random.default_rng(9).normal(size=other[train + 1 :].shape)
    other[train + 1 :] = noise / np.linalg.norm(noise, axis=-1, keepdims=True)
    b = fc.fit_all(other, anchor, topo, src, dst, train=train, models=("anchor", "peer", "attractor"))
    assert a["best"] == b["best"] and a["selection"] == b["selection"]
    for m in a["models"]:
        assert a["models"][m]["params"] == b["models"][m]["params"], m
        assert a["models"][m]["aic"] == b["models"][m]["aic"], m
        assert a["models"][m]["one_step"]["mse"] != b["models"][m]["one_step"]["mse"], m
