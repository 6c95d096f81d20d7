"""Paths shared by the analysis scripts: they read ../scenarios and write ../figures."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
FIGURES = ROOT / "figures"

# hegselmann_krause.toml moved to the sphere S^2: uniform starts on the whole sphere, the
# bystander anchor at the north pole, clusters counted within 1e-4 rad.
HK_ON_SPHERE = [
    'manifold.kind="sphere"',
    "manifold.dim=2",
    "anchor.state=[0.0, 0.0, 1.0]",
    'init.kind="random"',
    "record.cluster_tol=1e-4",
]


def write_numbers(name: str, numbers: dict) -> Path:
    """The numbers behind a figure, next to it, so the README's claims can be checked."""
    path = FIGURES / f"{name}.json"
    path.write_text(json.dumps(numbers, indent=2, default=float) + "\n")
    return path


def mean_interval(x, rng, n: int = 1000) -> list[float]:
    """90 % percentile interval of the mean of ``x`` over its entries (discussions, agents) resampled."""
    import numpy as np

    draws = x[rng.integers(0, len(x), size=(n, len(x)))].mean(axis=1)
    return [float(np.quantile(draws, 0.05)), float(np.quantile(draws, 0.95))]
