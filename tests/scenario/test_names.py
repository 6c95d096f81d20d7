"""The scenario layer's names and geometry agree with the engine's, which it may not import."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from hivemind.engine import rules, schedules
from hivemind.engine.manifolds import MANIFOLDS, get_manifold
from hivemind.scenario.names import BUILTIN_RULES, MANIFOLD_KINDS, SCHEDULES, SYMBOLS, ambient_dim, on_manifold


def test_the_names_a_scenario_may_use_are_the_engines():
    assert set(MANIFOLD_KINDS) == set(MANIFOLDS) == set(SYMBOLS)
    assert SCHEDULES == schedules.SCHEDULES
    for kind in MANIFOLD_KINDS:
        assert SYMBOLS[kind] == get_manifold(kind, 2).symbol
    hyper = {"step_size": 0.1, "noise": 0.0, "noise_decay": 1.0, "gossip_prob": 0.5, "confidence": np.inf}
    for name in BUILTIN_RULES:  # each is a rule of the engine's own, not an optax name
        assert callable(getattr(rules, name)) and rules.make_rule(get_manifold("sphere", 2), name, hyper).step


@pytest.mark.parametrize("kind", MANIFOLD_KINDS)
@pytest.mark.parametrize("dim", [1, 3])
def test_on_manifold_agrees_with_each_manifolds_belongs(kind, dim):
    """On random points, on points pushed off by growing amounts, and on the wrong width."""
    manifold = get_manifold(kind, dim)
    assert ambient_dim(kind, dim) == manifold.ambient_dim
    x = np.asarray(manifold.random_point(jax.random.key(dim), (64,), dtype=np.float64))
    rng = np.random.default_rng(dim)
    pushed = x * (1 + rng.choice([0.0, 1e-7, 1e-5, 3e-5, 1e-3, 0.1], size=(64, 1)))
    for points in (x, pushed, x[:, :-1]):
        for atol in (1e-6, 1e-4):
            expected = np.asarray(manifold.belongs(points, atol))
            assert (on_manifold(kind, dim, points, atol) == expected).all()
    if kind != "euclidean":
        assert not on_manifold(kind, dim, pushed, 1e-6).all()  # the check can fail
