"""Entropy collapse: how many degrees of freedom a node keeps as it binds to the shared context.

The paper's second claim: as a node's representation goes from *atomic* (independent of
the context) to *entangled* (a function of the context alone), its entropy goes to zero.
We make that measurable. Over an ensemble of S samples (run seeds, each with its own
independent initial configuration z), the engine evolves the context-driven states
x(t). A node at entanglement lambda in [0, 1] is the point a fraction lambda of the way
along the geodesic from its atomic state to its context-driven one,

    y(lambda, t) = Exp_z(lambda Log_z(x(t))),

so lambda = 0 is z itself and lambda = 1 is x(t). Its entropy is estimated from the S
samples of Log_a(y) in coordinates of the tangent space at the anchor a, by

* a Gaussian estimate, 1/2 log det(2 pi e Sigma), with two readings of "degrees of
  freedom": the participation ratio (tr Sigma)^2 / tr Sigma^2 (a shape: how many
  directions share the variance) and the resolved dimension sum s_k / (s_k + delta^2)
  over the eigenvalues s_k (how many directions still vary by more than delta);
* the Kozachenko-Leonenko k-nearest-neighbour estimator, which assumes no shape.

For the ``gradient`` rule near the anchor the linear theory predicts the collapse: once
the slowest mode of the grounded Laplacian dominates, every agent's spread shrinks by
rho per step in all d directions, so H(lambda=1, t) falls by d log(1/rho) per step.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from hivemind.engine.manifolds import Manifold

DEFAULT_LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAX_TIMES = 50  # recorded steps at which the entropies are estimated
AGENT_CHUNK = 512  # agents per batch of pairwise distances: bounds memory at S^2 * chunk


def entangle(manifold: Manifold, atomic: jax.Array, context: jax.Array, lam) -> jax.Array:
    """The point a fraction ``lam`` of the way along the geodesic from ``atomic`` to ``context``."""
    return manifold.exp(atomic, lam * manifold.log(atomic, context))


def tangent_basis(manifold: Manifold, point: jax.Array) -> jax.Array:
    """An orthonormal basis (d, D) of the tangent space at ``point`` in the manifold's metric.

    The ambient unit vectors, projected onto the tangent space, span it; the top d
    eigenvectors of their Gram matrix turn them into an orthonormal basis. This works for
    the Minkowski metric of the hyperboloid as well as for the Euclidean one.
    """
    eye = jnp.eye(manifold.ambient_dim, dtype=point.dtype)
    proj = manifold.proj(point, eye)  # (D, D), rows tangent at point
    gram = manifold.inner(point, proj[:, None, :], proj[None, :, :])
    w, u = jnp.linalg.eigh(gram)
    top = jnp.argsort(-w)[: manifold.dim]
    return (u[:, top] / jnp.sqrt(w[top])).T @ proj


def tangent_coordinates(manifold: Manifold, point: jax.Array, y: jax.Array, basis: jax.Array | None = None) -> jax.Array:
    """Coordinates (..., d) of Log_point(y) in an orthonormal basis of the tangent space at ``point``."""
    basis = tangent_basis(manifold, point) if basis is None else basis
    v = manifold.log(point, y)
    return manifold.inner(point, v[..., None, :], basis)


# --- Estimators over samples (..., S, d), in nats -------------------------------------


def _covariance(samples: np.ndarray) -> np.ndarray:
    c = samples - samples.mean(axis=-2, keepdims=True)
    return np.einsum("...si,...sj->...ij", c, c) / (samples.shape[-2] - 1)


def _eigenvalues(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.linalg.eigvalsh(_covariance(samples)), 0.0, None)


def _digamma_half(x: float) -> float:
    """psi(x) for x a positive multiple of 1/2, from psi(1) and psi(1/2) by recurrence."""
    n2 = round(2 * x)
    if n2 < 1 or abs(n2 - 2 * x) > 1e-12:
        raise ValueError(f"x must be a positive multiple of 1/2, got {x}")
    if n2 % 2 == 0:
        base, y = -np.euler_gamma, 1.0
    else:
        base, y = -np.euler_gamma - 2 * math.log(2), 0.5
    while y < x - 1e-12:
        base += 1 / y
        y += 1
    return base


def gaussian_entropy(samples: np.ndarray, unbiased: bool = True) -> np.ndarray:
    """1/2 log det(2 pi e Sigma) from the sample covariance; -inf where it is singular.

    log det of a sample covariance is biased low, by several nats when S is not much
    larger than d; ``unbiased`` removes the exact Wishart bias,
    E log det S = log det Sigma + d log(2/n) + sum_i psi((n - i + 1)/2) with n = S - 1
    (Ahmed & Gokhale 1989). Needs more samples than dimensions (S > d), or the
    covariance is singular by construction, whatever the data.
    """
    s, d = samples.shape[-2:]
    if s <= d:
        raise ValueError(f"a Gaussian entropy in {d} dimensions needs more than {d} samples, got {s}")
    lam = _eigenvalues(samples)
    with np.errstate(divide="ignore"):
        logdet = np.log(lam).sum(axis=-1)
    if unbiased:
        n = s - 1
        logdet = logdet - d * math.log(2 / n) - sum(_digamma_half((n - i + 1) / 2) for i in range(1, d + 1))
    return 0.5 * (d * math.log(2 * math.pi * math.e) + logdet)


def participation_ratio(samples: np.ndarray) -> np.ndarray:
    """(tr Sigma)^2 / tr(Sigma^2): between 1 (one direction) and d (isotropic); 0 with no variance."""
    lam = _eigenvalues(samples)
    tr, tr2 = lam.sum(axis=-1), (lam**2).sum(axis=-1)
    return np.where(tr2 > 0, tr**2 / np.where(tr2 > 0, tr2, 1.0), 0.0)


def resolved_dimension(samples: np.ndarray, resolution: float) -> np.ndarray:
    """sum_k s_k / (s_k + delta^2): the directions whose standard deviation exceeds ``resolution``.

    Near d for a spread much wider than delta in every direction, near 0 for one much
    narrower: degrees of freedom that go to zero as the node collapses.
    """
    lam = _eigenvalues(samples)
    return (lam / (lam + resolution**2)).sum(axis=-1)


def knn_entropy(samples: np.ndarray, k: int = 3) -> np.ndarray:
    """Kozachenko-Leonenko: psi(S) - psi(k) + log V_d + (d/S) sum_i log eps_i.

    eps_i is the Euclidean distance from sample i to its k-th nearest neighbour and V_d
    the volume of the unit d-ball (Kraskov, Stögbauer & Grassberger 2004, eq. 20). Where
    samples coincide, eps = 0 and the estimate is -inf: no spread at all.
    """
    s, d = samples.shape[-2:]
    if not 1 <= k < s:
        raise ValueError(f"k must be between 1 and the number of samples - 1 ({s - 1}), got {k}")
    batch = samples.reshape(-1, s, d)
    log_eps = np.empty(batch.shape[:2])
    for lo in range(0, batch.shape[0], AGENT_CHUNK):
        x = batch[lo : lo + AGENT_CHUNK]
        sq = (x**2).sum(axis=-1)
        d2 = sq[:, :, None] + sq[:, None, :] - 2 * np.einsum("bsi,bti->bst", x, x)
        d2 = np.clip(d2, 0.0, None)
        idx = np.arange(s)
        d2[:, idx, idx] = np.inf
        kth = np.partition(d2, k - 1, axis=-1)[..., k - 1]
        with np.errstate(divide="ignore"):
            log_eps[lo : lo + AGENT_CHUNK] = 0.5 * np.log(kth)
    log_volume = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    h = _digamma_half(s) - _digamma_half(k) + log_volume + d * log_eps.mean(axis=-1)
    return h.reshape(samples.shape[:-2])


def gaussian_entropy_exact(cov: np.ndarray) -> float:
    """The entropy of N(mu, cov), 1/2 log det(2 pi e cov): what the estimators should find."""
    d = cov.shape[-1]
    return 0.5 * (d * math.log(2 * math.pi * math.e) + np.linalg.slogdet(cov)[1])
