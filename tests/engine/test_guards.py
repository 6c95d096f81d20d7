"""Numerical guards: every rule's blow-up is caught, and states stay on their manifold."""

from __future__ import annotations

import numpy as np
import pytest

from hivemind import SimulationDiverged, simulate
from tests.helpers import scenario

# On R^2 with a complete graph of 8, lambda_max of the grounded Laplacian is 8, so any
# step with |1 - 8 eta| > 1 grows geometrically; Adam's steps are normalised, so it needs
# a step that overflows float32 outright.
BLOW_UP = {
    "gradient": {"step_size": 3.0},
    "stochastic": {"step_size": 3.0, "noise": 0.1},
    "gossip": {"step_size": 3.0, "gossip_prob": 1.0},
    "sgd": {"step_size": 3.0},
    "adam": {"step_size": 1e38},
}


@pytest.mark.parametrize("rule", BLOW_UP)
def test_each_rule_stops_at_the_first_non_finite_record(rule):
    s = scenario(
        manifold={"kind": "euclidean", "dim": 2},
        graph={"kind": "complete", "n": 8},
        dynamics={"rule": rule, "steps": 2000, **BLOW_UP[rule]},
    )
    with pytest.raises(SimulationDiverged) as info:
        simulate(s)
    ds = info.value.dataset
    assert np.isfinite(ds.state.values).all() and np.isfinite(ds.loss.values).all()
    assert ds.sizes["step"] >= 1 and info.value.step > int(ds.step[-1])


@pytest.mark.parametrize("kind", ["sphere", "hyperbolic"])
def test_states_stay_on_the_manifold_for_1e5_float32_steps(kind):
    # Noise keeps every state moving, so rounding has 10^5 chances to push it off.
    s = scenario(
        manifold={"kind": kind, "dim": 3},
        graph={"kind": "cycle", "n": 20},
        dynamics={"rule": "stochastic", "step_size": 0.05, "steps": 100_000, "noise": 0.05},
        record={"every": 10_000},
    )
    ds = simulate(s)
    assert ds.state.dtype == np.float32
    x = ds.state.values.astype(np.float64)
    if kind == "sphere":
        drift = np.abs(np.linalg.norm(x, axis=-1) - 1)
    else:  # <x, x>_L = -1, relative to the size of the terms that cancel
        drift = np.abs(-(x[..., 0] ** 2) + (x[..., 1:] ** 2).sum(-1) + 1) / np.maximum(1, x[..., 0] ** 2)
    assert drift.max() < 1e-5
    assert ds.distance_to_anchor.values[:, -1].max() > 1e-3  # the noise really kept them moving
