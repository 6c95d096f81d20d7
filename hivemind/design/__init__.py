"""Design: choose interventions (innate opinions, stubborn agents, ties, an anchor's coupling or
place) by gradient through the dynamics, against the field's algorithms (``hivemind design``).

``hivemind.design(scenario, objective, intervene, budget, ...)`` is ``hivemind.design.design``:
the package is callable, because importing any of its modules makes ``hivemind.design`` this
package rather than the function the top level exports lazily.
"""

import sys
import types

from hivemind.design.interventions import INTERVENTIONS
from hivemind.design.problem import OBJECTIVES, DesignError, problem
from hivemind.design.solve import SCHEMA_VERSION, DesignResult, design

__all__ = ["INTERVENTIONS", "OBJECTIVES", "SCHEMA_VERSION", "DesignError", "DesignResult", "design", "problem"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs) -> DesignResult:
        return design(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
