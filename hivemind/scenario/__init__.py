"""Scenarios as plain data: the spec dataclasses, TOML parsing, overrides and sweep grids.

The bottom layer: nothing here imports jax (an optax rule is checked by importing optax
on demand), so reading and validating a scenario answers at once.
"""

from hivemind.scenario.graphs import GraphArrays, GraphError, graph_arrays
from hivemind.scenario.parse import apply_overrides, degree_inertia, load_scenario, parse_override, parse_scenario
from hivemind.scenario.reader import Reader, typed
from hivemind.scenario.spec import (
    AgentsSpec,
    AnchorSpec,
    DynamicsSpec,
    GraphSpec,
    InitSpec,
    ManifoldSpec,
    RecordSpec,
    RunSpec,
    Scenario,
    ScenarioError,
    node_index,
    stubbornness_vector,
)

__all__ = [
    "AgentsSpec",
    "AnchorSpec",
    "DynamicsSpec",
    "GraphArrays",
    "GraphError",
    "GraphSpec",
    "InitSpec",
    "ManifoldSpec",
    "RecordSpec",
    "Reader",
    "RunSpec",
    "Scenario",
    "ScenarioError",
    "apply_overrides",
    "degree_inertia",
    "graph_arrays",
    "load_scenario",
    "node_index",
    "parse_override",
    "parse_scenario",
    "stubbornness_vector",
    "typed",
]
