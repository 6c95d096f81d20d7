"""Design: choose interventions (innate opinions, stubborn agents, ties, an anchor's coupling) by
gradient through the dynamics, against the field's algorithms (``hivemind design``)."""

from hivemind.design.interventions import INTERVENTIONS
from hivemind.design.problem import OBJECTIVES, DesignError, problem
from hivemind.design.solve import SCHEMA_VERSION, DesignResult, design

__all__ = ["INTERVENTIONS", "OBJECTIVES", "SCHEMA_VERSION", "DesignError", "DesignResult", "design", "problem"]
