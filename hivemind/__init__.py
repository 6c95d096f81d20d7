"""hivemind: simulate semantic consensus around an infinite-inertia anchor on Riemannian manifolds."""

from __future__ import annotations

__version__ = "0.1.0"

from hivemind.engine.manifolds import Euclidean, Hyperbolic, Sphere, get_manifold  # noqa: E402
from hivemind.engine.simulate import SimulationDiverged, simulate  # noqa: E402
from hivemind.engine.sweep import sweep  # noqa: E402
from hivemind.fitting import fit  # noqa: E402
from hivemind.io.results import load_run, save_run  # noqa: E402
from hivemind.io.scenario import Scenario, ScenarioError, load_scenario, parse_scenario  # noqa: E402
from hivemind.live.run import run_live  # noqa: E402

__all__ = [
    "Euclidean",
    "Hyperbolic",
    "Scenario",
    "ScenarioError",
    "SimulationDiverged",
    "Sphere",
    "fit",
    "get_manifold",
    "load_run",
    "load_scenario",
    "parse_scenario",
    "run_live",
    "save_run",
    "simulate",
    "sweep",
]
