"""hivemind: simulate semantic consensus around an infinite-inertia anchor on Riemannian manifolds.

The public names are imported on first use (PEP 562), so ``import hivemind`` and
``hivemind --help`` do not load jax: each name below maps to the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from hivemind._version import __version__

_EXPORTS = {
    "Euclidean": "hivemind.engine.manifolds",
    "Hyperbolic": "hivemind.engine.manifolds",
    "Sphere": "hivemind.engine.manifolds",
    "get_manifold": "hivemind.engine.manifolds",
    "Scenario": "hivemind.scenario",
    "ScenarioError": "hivemind.scenario",
    # The whole file, [live] included (``hivemind.scenario``'s own leave [live] as a table).
    "load_scenario": "hivemind.live.config",
    "parse_scenario": "hivemind.live.config",
    "SimulationDiverged": "hivemind.runner.simulate",
    "simulate": "hivemind.runner.simulate",
    "run_in": "hivemind.runner.rundir",
    "sweep": "hivemind.runner.sweep",
    "load_run": "hivemind.io.results",
    "save_run": "hivemind.runner.manifest",
    "fit_discussions": "hivemind.theory.fitting.data",
    "fit_panel": "hivemind.theory.fitting",
    "make_panel": "hivemind.theory.fitting",
    "read_live": "hivemind.live.config",
    "run_live": "hivemind.live.run",
    "design": "hivemind.design",
}

__all__ = [
    "__version__",
    "Euclidean",
    "Hyperbolic",
    "Scenario",
    "ScenarioError",
    "SimulationDiverged",
    "Sphere",
    "design",
    "fit_discussions",
    "fit_panel",
    "get_manifold",
    "load_run",
    "load_scenario",
    "make_panel",
    "parse_scenario",
    "read_live",
    "run_in",
    "run_live",
    "save_run",
    "simulate",
    "sweep",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hivemind' has no attribute {name!r}")
    imported = importlib.import_module(module)
    # A subpackage exported under its own name (hivemind.design, callable) is the package itself,
    # as the import system makes it once any of its modules is imported.
    value = imported if module == f"{__name__}.{name}" else getattr(imported, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from hivemind.design import design
    from hivemind.engine.manifolds import Euclidean, Hyperbolic, Sphere, get_manifold
    from hivemind.io.results import load_run
    from hivemind.live.config import load_scenario, parse_scenario, read_live
    from hivemind.live.run import run_live
    from hivemind.runner.manifest import save_run
    from hivemind.runner.rundir import run_in
    from hivemind.runner.simulate import SimulationDiverged, simulate
    from hivemind.runner.sweep import sweep
    from hivemind.scenario import Scenario, ScenarioError
    from hivemind.theory.fitting import fit_panel, make_panel
    from hivemind.theory.fitting.data import fit_discussions
