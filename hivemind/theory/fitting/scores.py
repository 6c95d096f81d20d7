"""Scores of one-round-ahead forecasts against the simplest alternatives, measured the same way.

Every score is a sum of squared errors over a set of transitions, kept per discussion (or per
round, for one conversation) so that intervals can resample the unit that varies. The skill
against a baseline is 1 - SSE_model / SSE_baseline over the same transitions: 0 is no better
than the baseline, 1 is perfect. Baselines: ``persistence`` (no change), ``neighbours`` (the
mean of the agents one hears at the origin round, each weighed by its tie's |weight|; no change for an agent who hears nobody) and
``mean`` (the mean of the fitted values: a fixed point that knows nothing of the discussion).
"""

from __future__ import annotations

import weakref

import jax
import numpy as np

from hivemind.theory.fitting.estimate import errors, fitted_rows, mean_point
from hivemind.theory.fitting.models import BASELINES
from hivemind.theory.fitting.panel import Panel

LEVEL = 0.9
RESAMPLES = 1000


def _neighbours_mean(panel: Panel) -> np.ndarray:
    """Every agent's forecast by copy-the-neighbours: the mean of the agents it hears, observed at
    the origin round (normalised on the sphere), or its own value when it hears nobody."""
    a = panel.arrays
    y = a.y[:-1]
    w = np.abs(a.heard_weight)[None] * a.valid[:-1][:, a.heard]  # (T - 1, N, K): the step's table of who hears whom
    mass = w.sum(-1)
    hears = mass > 0
    mean = np.einsum("tnk,tnkd->tnd", w, y[:, a.heard]) / np.where(hears, mass, 1.0)[..., None]
    if panel.space == "sphere":
        norm = np.linalg.norm(mean, axis=-1, keepdims=True)
        hears = hears & (norm[..., 0] > 1e-12)
        mean = mean / np.where(norm > 1e-12, norm, 1.0)
    return np.where(hears[..., None], mean, y)


def sums(panel: Panel, sq: np.ndarray, weights: np.ndarray, by: str) -> np.ndarray:
    """The squared errors ``sq`` (T - 1, N) with ``weights`` summed per discussion (``by`` =
    "discussions", one entry per discussion of the panel) or per round ("rounds")."""
    s = sq * weights
    if by == "rounds":
        return s.sum(1)
    return np.bincount(panel.conversation, weights=s.sum(0), minlength=panel.n_conversations)


def skill(model: np.ndarray, base: np.ndarray) -> float | None:
    b = float(np.sum(base))
    return None if b <= 0 else 1.0 - float(np.sum(model)) / b


def interval(model: np.ndarray, base: np.ndarray, units: np.ndarray, key, resamples: int = RESAMPLES) -> list | None:
    """The percentile interval of the skill over ``resamples`` resamples (drawn with the JAX
    ``key``) of ``units`` (indices into the per-unit sums), or None with fewer than two units."""
    units = np.asarray(units)
    if units.size < 2:
        return None
    draws = np.asarray(jax.random.randint(key, (resamples, units.size), 0, units.size))
    m, b = model[units][draws].sum(1), base[units][draws].sum(1)
    ok = b > 0
    s = 1.0 - m[ok] / b[ok]
    q = (1 - LEVEL) / 2
    return [float(np.quantile(s, q)), float(np.quantile(s, 1 - q))] if s.size else None


def score(panel: Panel, model_sq: np.ndarray, base_sq: dict, weights: np.ndarray, by: str, key) -> dict:
    """MSE, skills against each baseline with intervals over ``by``, and the number of transitions."""
    units = np.flatnonzero(sums(panel, np.ones_like(weights), weights, by) > 0)
    m = sums(panel, model_sq, weights, by)
    n = float(weights.sum())
    out = {"mse": float(m.sum() / n) if n else None, "transitions": int(n), by: int(units.size)}
    # One key for every baseline: the same resampled units, so the intervals are comparable.
    for name in BASELINES:
        b = sums(panel, base_sq[name], weights, by)
        out[f"skill_vs_{name}"] = skill(m[units], b[units])
        out[f"interval_vs_{name}"] = interval(m, b, units, key)
    return out


# Persistence's and copy-the-neighbours' errors depend on the panel alone: computed once per
# panel, not once per model and fold.
_FIXED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def baseline_errors(panel: Panel, fitted: np.ndarray) -> dict[str, np.ndarray]:
    """Each baseline's squared errors (T - 1, N)."""
    observed = panel.arrays.y[1:]
    if panel not in _FIXED:
        _FIXED[panel] = {
            "persistence": errors(panel.space, panel.arrays.y[:-1], observed),
            "neighbours": errors(panel.space, _neighbours_mean(panel), observed),
        }
    z = mean_point(panel.space, panel.arrays.y, fitted_rows(fitted))
    return {**_FIXED[panel], "mean": errors(panel.space, np.broadcast_to(z, observed.shape), observed)}


def r_squared(observed: np.ndarray, predicted: np.ndarray) -> float | None:
    """1 - SSE / SST of ``predicted`` against ``observed`` (flattened); None where ``observed`` is
    flat (no variance to explain) or has fewer than two values."""
    observed, predicted = np.ravel(observed), np.ravel(predicted)
    total = float(np.sum((observed - observed.mean()) ** 2))
    if observed.size < 2 or total <= 1e-12 * max(1.0, float(np.sum(observed**2))):
        return None
    return 1.0 - float(np.sum((observed - predicted) ** 2)) / total
