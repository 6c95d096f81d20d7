"""Entropy estimators against the analytic entropy of a Gaussian, and the collapse experiment."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import digamma

from hivemind.cli import main
from hivemind.engine.manifolds import get_manifold
from hivemind.experiments.entropy import collapse_slope, entropy_collapse, summary_table
from hivemind.theory import predicted_rate
from hivemind.theory.entropy import (
    entangle,
    gaussian_entropy,
    gaussian_entropy_exact,
    knn_entropy,
    participation_ratio,
    resolved_dimension,
    tangent_basis,
    tangent_coordinates,
)
from tests.helpers import scenario, scenario_text


def random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.2 * np.eye(d)


@pytest.mark.parametrize("d", [1, 3])
def test_both_estimators_match_the_analytic_gaussian_entropy(d):
    rng = np.random.default_rng(d)
    cov = random_cov(rng, d)
    x = rng.multivariate_normal(rng.normal(size=d), cov, size=(8, 4000))
    exact = 0.5 * math.log((2 * math.pi * math.e) ** d * np.linalg.det(cov))
    assert gaussian_entropy_exact(cov) == pytest.approx(exact)
    assert np.abs(gaussian_entropy(x) - exact).max() < 0.06
    assert np.abs(knn_entropy(x, k=3) - exact).max() < 0.12


def test_gaussian_estimate_is_unbiased_with_few_samples():
    # With S = 20 samples in d = 10 the plain log det is biased by nearly 2 nats; the
    # Wishart correction removes it on average.
    rng = np.random.default_rng(0)
    d, s = 10, 20
    cov = random_cov(rng, d)
    x = rng.multivariate_normal(np.zeros(d), cov, size=(4000, s))
    exact = gaussian_entropy_exact(cov)
    assert gaussian_entropy(x).mean() == pytest.approx(exact, abs=0.1)
    # ... and the plain estimate is off by the Wishart bias, computed here with scipy.
    n = s - 1
    bias = 0.5 * (d * math.log(2 / n) + sum(digamma((n - i + 1) / 2) for i in range(1, d + 1)))
    assert bias < -1.5
    assert gaussian_entropy(x, unbiased=False).mean() - exact == pytest.approx(bias, abs=0.1)


def test_scaling_shifts_entropy_by_d_log_c():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 4))
    for estimator in (gaussian_entropy, knn_entropy):
        assert estimator(0.01 * x) == pytest.approx(estimator(x) + 4 * math.log(0.01), abs=1e-9)


def test_degrees_of_freedom():
    rng = np.random.default_rng(2)
    iso = rng.normal(size=(20000, 6))
    assert participation_ratio(iso) == pytest.approx(6, rel=0.02)
    line = np.outer(rng.normal(size=300), rng.normal(size=6))  # rank one
    assert participation_ratio(line) == pytest.approx(1.0)
    assert participation_ratio(np.zeros((10, 3))) == 0.0
    # sigma = 1 against delta = 1e-3 resolves all 6 directions; sigma = 1e-6 none.
    assert resolved_dimension(iso, 1e-3) == pytest.approx(6, abs=1e-3)
    assert resolved_dimension(1e-6 * iso, 1e-3) < 1e-4
    assert gaussian_entropy(np.ones((10, 3))) == -np.inf and knn_entropy(np.ones((10, 3))) == -np.inf


@pytest.mark.parametrize("kind,dim", [("sphere", 4), ("hyperbolic", 3), ("euclidean", 3)])
def test_tangent_coordinates_are_an_isometry_at_the_anchor(kind, dim):
    m = get_manifold(kind, dim)
    k1, k2 = jax.random.split(jax.random.key(0))
    a = m.random_point(k1, (), jnp.float64)
    basis = tangent_basis(m, a)
    gram = m.inner(a, basis[:, None, :], basis[None, :, :])
    np.testing.assert_allclose(gram, np.eye(dim), atol=1e-10)
    np.testing.assert_allclose(m.proj(a, basis), basis, atol=1e-10)  # tangent at a
    y = m.exp(a[None], 0.7 * m.random_tangent(k2, jnp.broadcast_to(a, (50, a.size))))
    coords = tangent_coordinates(m, a, y, basis)
    np.testing.assert_allclose(np.linalg.norm(coords, axis=-1), m.dist(a, y), rtol=1e-9)
    np.testing.assert_allclose(m.exp(a, coords @ basis), y, atol=1e-9)


def test_entangle_walks_the_geodesic():
    m = get_manifold("sphere", 3)
    k1, k2 = jax.random.split(jax.random.key(3))
    z, x = m.random_point(k1, (20,), jnp.float64), m.random_point(k2, (20,), jnp.float64)
    np.testing.assert_allclose(entangle(m, z, x, 0.0), z, atol=1e-12)
    np.testing.assert_allclose(entangle(m, z, x, 1.0), x, atol=1e-9)
    y = entangle(m, z, x, 0.3)
    np.testing.assert_allclose(m.dist(z, y), 0.3 * m.dist(z, x), rtol=1e-9)
    np.testing.assert_allclose(m.dist(y, x), 0.7 * m.dist(z, x), rtol=1e-9)


EUCLID = {
    "manifold": {"kind": "euclidean", "dim": 2},
    "graph": {"kind": "cycle", "n": 6},
    "dynamics": {"rule": "gradient", "step_size": 0.2, "steps": 300},
    "run": {"precision": "float64"},
}


def test_collapse_on_euclidean_space_follows_the_exact_law():
    # On R^d the context state x(t) is linear in the start z, and at the end x = a, so
    # y - a = (1 - lambda)(z - a): H(lambda) = H(0) + d log(1 - lambda) exactly; at
    # lambda = 1 the spread left is the contraction rho^t, far below.
    s = scenario(**EUCLID)
    result = entropy_collapse(s, [0.0, 0.5, 0.9, 1.0], samples=400, k=3)
    final = summary_table(result).isel(step=-1)
    for est in ("gaussian_entropy", "knn_entropy"):
        h = final[est].values
        np.testing.assert_allclose(h[1] - h[0], 2 * math.log(0.5), atol=1e-6 if est == "gaussian_entropy" else 0.05)
        np.testing.assert_allclose(h[2] - h[0], 2 * math.log(0.1), atol=1e-6 if est == "gaussian_entropy" else 0.1)
        assert h[3] < h[0] - 20  # collapsed
    assert float(final.resolved_dimension.sel(lam=0.0)) == pytest.approx(2, abs=1e-3)
    assert float(final.resolved_dimension.sel(lam=1.0)) < 1e-3
    # Entropy at lambda = 1 falls by d * rate nats per step.
    pred = predicted_rate(s.arrays, s.anchor_index, 1.0, 0.2)
    assert collapse_slope(result) == pytest.approx(-2 * pred.rate, rel=0.03)


def test_collapse_on_the_sphere_near_the_anchor_matches_theory():
    s = scenario(
        manifold={"kind": "sphere", "dim": 2},
        init={"kind": "cap", "spread": 0.2},
        dynamics={"rule": "gradient", "step_size": 0.2, "steps": 300},
        run={"precision": "float64"},
    )
    result = entropy_collapse(s, [0.0, 1.0], samples=200)
    pred = predicted_rate(s.arrays, s.anchor_index, 1.0, 0.2)
    assert collapse_slope(result) == pytest.approx(-2 * pred.rate, rel=0.03)
    final = summary_table(result).isel(step=-1)
    for est in ("gaussian_entropy", "knn_entropy"):
        assert float(final[est].sel(lam=1.0)) < float(final[est].sel(lam=0.0)) - 20


def test_agent_that_cannot_hear_the_anchor_keeps_its_entropy():
    graph = {"kind": "edges", "n": 4, "edges": [[0, 1], [1, 2]]}  # node 3 is alone
    s = scenario(**{**EUCLID, "graph": graph})
    result = entropy_collapse(s, [1.0], samples=100)
    h = result.gaussian_entropy.isel(lam=0)
    assert float(h.isel(step=-1, agent=3)) == pytest.approx(float(h.isel(step=0, agent=3)))
    assert float(h.isel(step=-1, agent=1)) < float(h.isel(step=0, agent=1)) - 20


def test_cli_writes_table_json_and_figure(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(scenario_text(**EUCLID))
    out = tmp_path / "ent"
    code = main(["entropy", str(path), "--out", str(out), "--lambdas", "0,0.5,1", "--samples", "40", "--formats", "png"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "grounded Laplacian predicts" in printed
    data = json.loads((out / "entropy.json").read_text())
    assert [r["lambda"] for r in data["final"]] == [0.0, 0.5, 1.0]
    assert data["final"][2]["gaussian_entropy"] < data["final"][0]["gaussian_entropy"] - 20
    header = (out / "entropy.csv").read_text().splitlines()[0]
    assert header == "lam,step,gaussian_entropy,knn_entropy,participation_ratio,resolved_dimension"
    assert (out / "entropy.png").stat().st_size > 10_000 and (out / "entropy.nc").exists()


@pytest.mark.parametrize(
    "args,needle",
    [(["--lambdas", "0,2"], "--lambdas"), (["--samples", "3"], "--samples"), (["--k", "0"], "--k")],
)
def test_cli_bad_flags_are_one_line_exit_2(tmp_path, capsys, args, needle):
    path = tmp_path / "s.toml"
    path.write_text(scenario_text(**EUCLID))
    assert main(["entropy", str(path), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err
