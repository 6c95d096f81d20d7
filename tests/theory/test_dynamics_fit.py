"""The dynamics fitter recovers the peer pull, anchor coupling and noise of trajectories the engine's step made."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from hivemind.engine import energy
from hivemind.engine.manifolds import get_manifold
from hivemind.theory.dynamics_fit import _step, anchor_interval, fit, peer_topology

N, D, R = 40, 16, 12


def _synthetic(eta: float, kappa: float, sigma: float, seed: int = 0):
    """R rounds of the model on S^15 with known parameters: (observations, anchor, graph arrays, topology)."""
    g = nx.watts_strogatz_graph(N, 4, 0.2, seed=1)
    src = np.array([u for u, _ in g.edges])
    dst = np.array([v for _, v in g.edges])
    topo = peer_topology(N, src, dst)
    with jax.enable_x64(True):
        manifold = get_manifold("sphere", D - 1)
        k_anchor, k_start, key = jax.random.split(jax.random.key(seed), 3)
        a = manifold.random_point(k_anchor, (), jnp.float64)
        o = jnp.broadcast_to(a, (N, D))
        x = manifold.exp(o, 1.2 * jax.vmap(manifold.random_tangent)(jax.random.split(k_start, N), o))
        ys = [x]
        for _ in range(R):
            key, k = jax.random.split(key)
            mean = _engine_step(manifold, _as_jax(topo), a, eta, kappa, x)
            x = manifold.exp(mean, sigma * jax.vmap(manifold.random_tangent)(jax.random.split(k, N), mean))
            ys.append(x)
        return np.asarray(jnp.stack(ys)), np.asarray(a), src, dst, topo


def _engine_step(manifold, topo, a, eta, kappa, x):
    """The data come from the engine's own pull (energy.pull), not from the fitter's."""
    return manifold.exp(x, eta * energy.pull(manifold, x, topo) + kappa * manifold.log(x, jnp.broadcast_to(a, x.shape)))


def test_the_fitters_step_is_the_engines_step():
    _, _, _, _, topo = _synthetic(0.3, 0.1, 0.0)
    with jax.enable_x64(True):
        manifold = get_manifold("sphere", D - 1)
        x = manifold.random_point(jax.random.key(5), (N,), jnp.float64)
        a = manifold.random_point(jax.random.key(6), (), jnp.float64)
        mine = _step(manifold, _as_jax(topo), a, 0.3, 0.1, x)
        engine = _engine_step(manifold, _as_jax(topo), a, 0.3, 0.1, x)
    np.testing.assert_allclose(np.asarray(mine), np.asarray(engine), atol=1e-12)


def _as_jax(topo):
    return type(topo)(*(jnp.asarray(t) for t in topo))


@pytest.mark.slow
def test_the_three_models_recover_known_parameters():
    eta, kappa, sigma = 0.3, 0.1, 0.02
    y, a, _, _, topo = _synthetic(eta, kappa, sigma)
    fits = {m: fit(y, a, topo, m) for m in ("anchor", "peer", "noise")}
    p = fits["noise"].params
    assert p["peer_coupling"] == pytest.approx(eta, rel=0.1)
    assert p["anchor_coupling"] == pytest.approx(kappa, rel=0.15)
    assert p["noise"] == pytest.approx(sigma, rel=0.2)
    # The paper's model has no peer term: it fits worse, and its pull stands in for the peers'.
    assert fits["anchor"].params["peer_coupling"] == 0.0
    assert fits["anchor"].train_rmse > 3 * fits["peer"].train_rmse
    assert fits["peer"].heldout_rmse < fits["anchor"].heldout_rmse
    assert fits["peer"].heldout_r2 > 0.9


@pytest.mark.parametrize("eta, kappa", [(0.25, 0.15), (0.6, 0.003)])
def test_noiseless_trajectories_are_fitted_exactly(eta, kappa):
    """Including a kappa as small as the real populations': there the loss is nearly flat in kappa,
    and a descent stopped after a fixed number of steps lands far from it."""
    y, a, _, _, topo = _synthetic(eta, kappa, 0.0, seed=3)
    f = fit(y, a, topo, "noise")
    assert f.params["peer_coupling"] == pytest.approx(eta, rel=1e-3)
    assert f.params["anchor_coupling"] == pytest.approx(kappa, rel=1e-3)
    assert f.params["noise"] < 1e-4
    assert f.heldout_rmse < 1e-4


def test_no_anchor_pull_is_fitted_as_zero():
    """kappa = 0 lies on the boundary: the fit must run down to it, not stop at a small positive value."""
    y, a, _, _, topo = _synthetic(0.4, 0.0, 0.0, seed=4)
    f = fit(y, a, topo, "peer")
    assert f.params["peer_coupling"] == pytest.approx(0.4, rel=1e-3)
    assert f.params["anchor_coupling"] < 1e-6


@pytest.mark.slow
def test_the_bootstrap_interval_over_agents_has_the_spread_of_independent_datasets():
    """The interval's width matches how kappa-hat varies across datasets drawn from the same model."""
    kappa = 0.1
    across = []
    for seed in range(6):
        y, a, _, _, topo = _synthetic(0.3, kappa, 0.02, seed=seed)
        across.append(fit(y, a, topo, "peer").params["anchor_coupling"])
    y, a, _, _, topo = _synthetic(0.3, kappa, 0.02, seed=2)
    point = fit(y, a, topo, "peer").params["anchor_coupling"]
    lo, hi = anchor_interval(y, a, topo, "peer", resamples=10)
    assert lo <= point <= hi
    spread = 2 * 1.645 * np.std(across, ddof=1)  # a 90% interval's width, from six independent datasets
    assert 0.5 * spread < hi - lo < 2 * spread
    assert 0.97 * kappa < lo and hi < 1.03 * kappa  # noise biases the deterministic fit by about 1%


def test_bad_models_and_too_few_rounds_are_refused():
    y, a, _, _, topo = _synthetic(0.3, 0.1, 0.0)
    with pytest.raises(ValueError, match="model must be one of"):
        fit(y, a, topo, "drift")
    with pytest.raises(ValueError, match="held-out"):
        fit(y, a, topo, "peer", train_rounds=R)


def test_long_run_rate_and_noise_floor_match_closed_forms():
    """One agent, no peers, on S^64: a geodesic step moves the fraction kappa of the way, so the
    distance is (1 - kappa)^t d0 and the half-life ln 2 / -ln(1 - kappa). With tangent noise the
    small-distance dynamics are v <- (1 - kappa) v + sigma xi, whose stationary E|v|^2 is
    D sigma^2 / (1 - (1 - kappa)^2); E|v| is that root times the chi mean factor."""
    import math

    from scipy.special import gammaln

    from hivemind.live.fit import long_run
    from hivemind.theory.dynamics_fit import mean_distance_ahead, noisy_mean_distance

    d, kappa, d0 = 64, 0.2, 0.8
    anchor = np.zeros(d + 1)
    anchor[0] = 1.0
    x0 = np.zeros((1, d + 1))
    x0[0, 0], x0[0, 1] = np.cos(d0), np.sin(d0)
    topo = peer_topology(1, np.zeros(0, np.int64), np.zeros(0, np.int64), directed=True)
    with jax.enable_x64(True):
        dist = np.asarray(mean_distance_ahead(10, topo, jnp.asarray(anchor), 0.0, kappa, jnp.asarray(x0)))
    np.testing.assert_allclose(dist, d0 * (1 - kappa) ** np.arange(11), rtol=1e-10)
    lr = long_run({"peer_coupling": 0.0, "anchor_coupling": kappa, "noise": 0.0}, x0, anchor, topo)
    assert lr["half_life_rounds"] == pytest.approx(math.log(2) / -math.log(1 - kappa))
    assert lr["verdict"] == "collapse"

    sigma = 0.005
    with jax.enable_x64(True):
        noisy = noisy_mean_distance(400, 64, topo, jnp.asarray(anchor), 0.0, kappa, sigma, jnp.asarray(x0), jax.random.key(3))
    floor = float(np.asarray(noisy)[200:].mean())
    chi_mean = math.sqrt(2) * math.exp(gammaln((d + 1) / 2) - gammaln(d / 2)) / math.sqrt(d)
    expected = math.sqrt(d * sigma**2 / (1 - (1 - kappa) ** 2)) * chi_mean
    assert floor == pytest.approx(expected, rel=0.02)
    lr = long_run({"peer_coupling": 0.0, "anchor_coupling": kappa, "noise": sigma}, x0, anchor, topo)
    assert lr["verdict"] == "floor" and lr["mean_distance"] == pytest.approx(expected, rel=0.05)
