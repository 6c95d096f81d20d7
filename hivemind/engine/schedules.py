"""Noise schedules: sigma_t as a pure function of the step count.

A schedule's *kind* is static (it picks the code); its numbers are traced arrays, so
changing them does not recompile.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Schedule = Callable[[jax.Array], jax.Array]

from hivemind.scenario.names import SCHEDULES  # noqa: E402  (the names scenarios use)


def constant(value) -> Schedule:
    """sigma_t = value."""
    return lambda t: jnp.zeros_like(t) + value


def inverse(value, decay) -> Schedule:
    """sigma_t = value / (1 + t / decay): decays to 0 like 1/t (Robbins-Monro)."""
    return lambda t: value / (1.0 + t / decay)


def exponential(value, decay) -> Schedule:
    """sigma_t = value * exp(-t / decay)."""
    return lambda t: value * jnp.exp(-t / decay)


def make_schedule(kind: str, value, decay) -> Schedule:
    if kind == "constant":
        return constant(value)
    if kind == "inverse":
        return inverse(value, decay)
    if kind == "exponential":
        return exponential(value, decay)
    raise ValueError(f"unknown schedule {kind!r}; expected one of {SCHEDULES}")
