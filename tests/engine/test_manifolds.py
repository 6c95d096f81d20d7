"""Geometry checked against identities and independent closed forms, in float32 and float64."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hivemind.engine.manifolds import Euclidean, Hyperbolic, Sphere, get_manifold

# Tolerances per dtype: a few hundred ulps for compositions of several transcendental steps.
TOL = {jnp.float32: 2e-4, jnp.float64: 1e-10}
# Points are kept within this geodesic radius of each other on H^n, where coordinates grow like e^d.
HYP_RADIUS = 3.0

MANIFOLDS = [Sphere(1), Sphere(2), Sphere(7), Hyperbolic(1), Hyperbolic(2), Hyperbolic(5), Euclidean(1), Euclidean(4)]
DTYPES = [jnp.float32, jnp.float64]
CASES = [(m, dt) for m in MANIFOLDS for dt in DTYPES]
IDS = [f"{m}-{jnp.dtype(dt).name}" for m, dt in CASES]

vectors = st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=8, max_size=8)
scales = st.sampled_from([0.0, 1e-12, 1e-8, 1e-6, 1e-3, 0.1, 0.5, 1.0, 2.0, 3.0])


def point(m, raw, dtype):
    """A point from hypothesis' raw numbers: through the tangent space at the origin."""
    v = jnp.asarray(raw[: m.ambient_dim], dtype)
    if m.name != "euclidean":
        v = v.at[0].set(0.0)  # tangent at the origin (1, 0, ..., 0)
    o = m.origin(dtype)
    if m.name == "hyperbolic":
        v = v * jnp.minimum(1.0, HYP_RADIUS / 2 / jnp.maximum(jnp.linalg.norm(v), 1e-30))
    return m.exp(o, v)


def tangent(m, x, raw, scale, dtype):
    raw = jnp.asarray(raw[: m.ambient_dim], dtype)
    u = m.proj(x, raw)
    n = m.norm(x, u)
    # Projecting a vector nearly normal to the tangent space keeps only rounding error;
    # rescaling that to unit length would test the input, not the geometry.
    assume(float(n) == 0.0 or float(n) > 1e-2 * float(jnp.max(jnp.abs(raw))))
    return jnp.where(n > 0, u / jnp.where(n > 0, n, 1.0), 0.0) * scale


@pytest.mark.parametrize(("m", "dtype"), CASES, ids=IDS)
@given(a=vectors, b=vectors)
def test_dist_symmetric_zero_and_matches_log(m, dtype, a, b):
    x, y = point(m, a, dtype), point(m, b, dtype)
    tol = TOL[dtype]
    assert m.dist(x, x) == 0.0  # exactly: no 1e-8 where 0 is exact
    assert abs(float(m.dist(x, y) - m.dist(y, x))) <= tol * (1 + float(m.dist(x, y)))
    if m.name == "sphere":
        assume(float(m.dist(x, y)) < math.pi - 0.05)  # Log is ill-conditioned near the cut locus
    assert float(m.norm(x, m.log(x, y))) == pytest.approx(float(m.dist(x, y)), rel=10 * tol, abs=10 * tol)


@pytest.mark.parametrize(("m", "dtype"), CASES, ids=IDS)
@given(a=vectors, b=vectors, c=vectors)
def test_triangle_inequality(m, dtype, a, b, c):
    x, y, z = (point(m, r, dtype) for r in (a, b, c))
    assert float(m.dist(x, z)) <= float(m.dist(x, y) + m.dist(y, z)) + 10 * TOL[dtype]


@pytest.mark.parametrize(("m", "dtype"), CASES, ids=IDS)
@given(a=vectors, b=vectors)
def test_exp_log_round_trip(m, dtype, a, b):
    x, y = point(m, a, dtype), point(m, b, dtype)
    if m.name == "sphere":
        assume(float(m.dist(x, y)) < math.pi - 0.05)
    back = m.exp(x, m.log(x, y))
    assert bool(m.belongs(back, 10 * TOL[dtype]))
    scale = 1.0 + float(jnp.max(jnp.abs(y)))
    np.testing.assert_allclose(np.asarray(back), np.asarray(y), atol=20 * TOL[dtype] * scale)


@pytest.mark.parametrize(("m", "dtype"), CASES, ids=IDS)
@given(a=vectors, u=vectors, s=scales)
def test_log_exp_round_trip_and_membership(m, dtype, a, u, s):
    x = point(m, a, dtype)
    v = tangent(m, x, u, s, dtype)
    y = m.exp(x, v)
    assert bool(m.belongs(y, 10 * TOL[dtype]))
    assert bool(m.belongs(m.retract(x, v), 10 * TOL[dtype]))
    scale = 1.0 + float(jnp.max(jnp.abs(x)))
    np.testing.assert_allclose(np.asarray(m.log(x, y)), np.asarray(v), atol=50 * TOL[dtype] * scale**2)


@pytest.mark.parametrize(("m", "dtype"), CASES, ids=IDS)
@given(a=vectors, b=vectors, u=vectors)
def test_tangent_vectors_stay_tangent_and_transport_preserves_norm(m, dtype, a, b, u):
    x, y = point(m, a, dtype), point(m, b, dtype)
    if m.name == "sphere":
        assume(float(m.dist(x, y)) < math.pi - 0.05)
    v = tangent(m, x, u, 1.0, dtype)
    scale = (1.0 + float(jnp.max(jnp.abs(x)))) * (1.0 + float(jnp.max(jnp.abs(y))))
    r = m.random_tangent(jax.random.key(0), x)
    w = m.transport(x, y, v)
    # proj is idempotent on tangent vectors; on S^n and H^n tangency is also <x, v> = 0.
    for base, vec, tol in ((x, v, 10 * TOL[dtype] * scale), (x, r, 50 * TOL[dtype] * scale), (y, w, 50 * TOL[dtype] * scale**2)):
        np.testing.assert_allclose(np.asarray(m.proj(base, vec)), np.asarray(vec), atol=tol * (1 + float(jnp.max(jnp.abs(vec)))))
        if m.name != "euclidean":
            assert abs(float(m.inner(base, base, vec))) <= tol * (1 + float(jnp.max(jnp.abs(vec))))
    assert float(m.norm(y, w)) == pytest.approx(float(m.norm(x, v)), abs=50 * TOL[dtype] * scale**2)
    # Transporting Log_x(y) gives -Log_y(x): both are the geodesic's velocity.
    lw = m.transport(x, y, m.log(x, y))
    np.testing.assert_allclose(np.asarray(lw), -np.asarray(m.log(y, x)), atol=100 * TOL[dtype] * scale**2)


# --- independent closed forms -------------------------------------------------


@given(t1=st.floats(-math.pi, math.pi), t2=st.floats(-math.pi, math.pi))
def test_circle_distance_is_the_wrapped_angle(t1, t2):
    m = Sphere(1)
    x = jnp.array([math.cos(t1), math.sin(t1)])
    y = jnp.array([math.cos(t2), math.sin(t2)])
    expected = abs((t1 - t2 + math.pi) % (2 * math.pi) - math.pi)
    assert float(m.dist(x, y)) == pytest.approx(expected, abs=1e-12)


@given(a=vectors, b=vectors)
def test_sphere_distance_matches_arccos(a, b):
    m = Sphere(7)
    x, y = np.asarray(point(m, a, jnp.float64)), np.asarray(point(m, b, jnp.float64))
    c = float(np.clip(x @ y, -1, 1))
    assume(abs(c) < 0.99)  # where arccos is well conditioned
    assert float(m.dist(x, y)) == pytest.approx(math.acos(c), abs=1e-12)


@given(a=vectors, b=vectors)
def test_hyperbolic_distance_matches_poincare_ball(a, b):
    """The same distance computed in another model of H^n: the Poincaré ball."""
    m = Hyperbolic(5)
    x, y = np.asarray(point(m, a, jnp.float64)), np.asarray(point(m, b, jnp.float64))
    p, q = x[1:] / (1 + x[0]), y[1:] / (1 + y[0])
    arg = 1 + 2 * np.sum((p - q) ** 2) / ((1 - p @ p) * (1 - q @ q))
    assert float(m.dist(x, y)) == pytest.approx(math.acosh(arg), rel=1e-8, abs=1e-7)


def test_euclidean_is_flat():
    m = Euclidean(3)
    x, y = jnp.array([1.0, 2.0, 3.0]), jnp.array([4.0, 6.0, 3.0])
    assert float(m.dist(x, y)) == 5.0
    np.testing.assert_array_equal(m.log(x, y), y - x)
    np.testing.assert_array_equal(m.exp(x, y - x), y)


# --- no NaN where geometry is delicate ----------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("m", [Sphere(2), Hyperbolic(2), Euclidean(3)], ids=str)
def test_no_nan_at_zero_tiny_and_antipodal_distances(m, dtype):
    x = m.projx(jnp.asarray([1.0, 0.3, -0.2], dtype)) if m.name != "hyperbolic" else m.projx(jnp.asarray([0, 0.3, -0.2], dtype))
    u = m.proj(x, jnp.asarray([0.2, -1.0, 0.5], dtype))
    tiny = m.exp(x, u / m.norm(x, u) * float(jnp.finfo(dtype).eps))
    others = [x, tiny]
    if m.name == "sphere":
        others += [-x, m.projx(-x + jnp.asarray([0, 1e-7, 0], dtype))]  # antipode and next to it
    sq = lambda a, b: m.dist(a, b) ** 2
    for y in others:
        for value in (m.dist(x, y), m.log(x, y), m.exp(x, m.log(x, y)), jax.grad(sq)(x, y), jax.grad(sq, 1)(x, y)):
            assert bool(jnp.all(jnp.isfinite(value))), (m, y, value)
        assert bool(m.belongs(m.exp(x, m.log(x, y)), 10 * TOL[dtype]))
    # Gradient of d^2 at d = 0 is exactly zero, as it is mathematically.
    np.testing.assert_array_equal(np.asarray(jax.grad(sq)(x, x)), 0.0)
    if m.name == "sphere":
        assert float(m.dist(x, -x)) == pytest.approx(math.pi, abs=10 * TOL[dtype])


def test_sphere_exp_stays_on_sphere_for_long_steps():
    m = Sphere(3)
    x = m.random_point(jax.random.key(1), (1000,))
    v = 50.0 * m.random_tangent(jax.random.key(2), x)  # many windings round the sphere
    assert bool(jnp.all(m.belongs(m.exp(x, v), 1e-6)))


@pytest.mark.parametrize("kind", ["sphere", "hyperbolic", "euclidean"])
def test_random_points_belong_and_unknown_kind_is_rejected(kind):
    m = get_manifold(kind, 4)
    x = m.random_point(jax.random.key(0), (100,))
    assert x.shape == (100, m.ambient_dim)
    assert bool(jnp.all(m.belongs(x, 1e-4)))
    with pytest.raises(ValueError, match="unknown manifold"):
        get_manifold("torus", 2)


def test_sphere_uniform_points_have_zero_mean():
    # Independent of the code: the uniform distribution on S^n has mean 0 and covariance I/(n+1).
    x = np.asarray(Sphere(2).random_point(jax.random.key(3), (20000,), jnp.float64))
    np.testing.assert_allclose(x.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), np.eye(3) / 3, atol=0.02)


@pytest.mark.parametrize("kind", ["sphere", "hyperbolic", "euclidean"])
def test_random_tangent_is_a_standard_gaussian_in_an_orthonormal_frame(kind):
    # Far from the origin (x_0 = cosh 3 on the hyperboloid) the noise must still be
    # N(0, I_d) in the metric: coordinates in an orthonormal basis have identity covariance.
    from hivemind.theory.entropy import tangent_basis

    m = get_manifold(kind, 3)
    o = m.origin(jnp.float64)
    direction = jnp.zeros(m.ambient_dim, jnp.float64).at[1].set(1.0).at[2].set(0.5)
    x = m.exp(o, 3.0 * m.proj(o, direction) / m.norm(o, m.proj(o, direction)))
    v = m.random_tangent(jax.random.key(7), jnp.broadcast_to(x, (40000, m.ambient_dim)))
    basis = tangent_basis(m, x)
    coords = np.asarray(m.inner(x, v[:, None, :], basis))
    np.testing.assert_allclose(np.cov(coords.T), np.eye(3), atol=0.03)
    np.testing.assert_allclose(m.proj(x, v), v, atol=1e-9)
