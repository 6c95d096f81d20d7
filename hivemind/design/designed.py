"""The designed scenario: the input scenario with the intervention applied, as a TOML file that
``hivemind run`` takes, and whose run reproduces the design's value.

It is the input's own TOML (with its ``--set`` overrides) with the keys the intervention
changes replaced: new innate opinions or initial states in a text file beside it
(``init.path``), stubborn agents as one stubbornness per node, reweighted or removed ties as a
GraphML file beside it (node order and labels kept), an anchor's coupling. At the equilibrium
the run must reach the fixed point: the designed scenario takes the ``gradient`` rule with a
step that is stable by Gershgorin's bound and as many steps as the same iteration needs, run
here, to come within ``EQUILIBRIUM_TOL`` of the solve; on a horizon it runs the horizon's steps.
Its ``[design]`` table names the objective and the value, which ``hivemind run`` checks.
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import tomli_w

from hivemind.design.equilibrium import degree, neighbours_sum
from hivemind.design.problem import Problem
from hivemind.design.solve import DesignResult

# How close (max |x - z*|, relative to the opinions' range) the designed run comes to the equilibrium.
EQUILIBRIUM_TOL = 1e-9
# The most steps a designed equilibrium run is given.
MAX_STEPS = 2_000_000


def designed_scenario(result: DesignResult, out: Path, stem: str = "designed") -> Path:
    """Write ``out/<stem>.toml`` (and the files it reads) for ``result``; returns the TOML's path."""
    prob = result.problem
    scenario = prob.scenario
    from hivemind.scenario.parse import apply_overrides

    data = apply_overrides(tomllib.loads(scenario.text), scenario.overrides, scenario.source or "<scenario>")
    base = Path(scenario.base or ".")
    _relocate(data, base, out)
    params = result.params()
    labels = scenario.arrays.labels
    name = result.intervention
    equilibrium = prob.objective.kind == "equilibrium"
    held_exactly = equilibrium and name == "stubborn" and result.options.get("hold") != "innate"
    if name == "innate" or (name == "stubborn" and equilibrium):
        # New innate opinions (initial states), or the opinions chosen agents hold.
        states = np.asarray(jnp.where(params.held > 0, params.t, params.s)) if held_exactly else np.asarray(params.s)
        _states_file(data, out / f"{stem}_states.txt", states[:, None] if states.ndim == 1 else states, scenario.name)
    if name == "stubborn" and (held_exactly or not equilibrium):
        theta = np.asarray(scenario.stubbornness, np.float64).copy()
        theta[list(result.chosen)] = 1.0
        data.setdefault("agents", {})["stubbornness"] = [float(v) for v in theta]
    if name in ("edges", "remove"):
        graph_file = out / f"{stem}_graph.graphml"
        _write_graph(graph_file, labels, prob, np.asarray(params.w), scenario.arrays.directed)
        data["graph"] = {"kind": "file", "path": graph_file.name}
    if name == "anchor" and result.options.get("anchor") == "position":
        # The initial states are pinned: a cap around the anchor would be drawn around its new place.
        rows = np.asarray(params.s)
        if prob.objective.kind == "equilibrium":
            rows = rows.copy()
            rows[prob.anchors] = np.asarray(params.anchor_value)
        rows = rows[:, None] if rows.ndim == 1 else rows
        _states_file(data, out / f"{stem}_states.txt", rows, scenario.name)
        for table, state in zip(_anchor_tables(data), rows[prob.anchors].tolist(), strict=True):
            table["state"] = [float(v) for v in state]
    elif name == "anchor":
        for table, kappa in zip(_anchor_tables(data), np.asarray(params.kappa), strict=True):
            table["coupling"] = float(kappa)
    if prob.objective.kind == "equilibrium":
        step, steps = equilibrium_steps(prob, params)
        data.setdefault("dynamics", {}).update({"rule": "gradient", "step_size": step, "steps": steps, "noise": 0.0})
        data["dynamics"].pop("confidence", None)
        data.setdefault("record", {})["every"] = max(1, steps // 10)
        data.setdefault("run", {})["precision"] = "float64"
    else:
        data.setdefault("dynamics", {})["steps"] = prob.horizon
        # The design computes in float64; a float32 run with stubborn agents on the sphere drifted
        # far from it within a few dozen steps (tests/design/test_design_cli.py's scenario).
        data.setdefault("run", {})["precision"] = "float64"
        if result.objective == "time_to_consensus":
            data.setdefault("record", {})["every"] = 1
    data["design"] = {"objective": result.objective, "value": float(result.value)}
    if prob.neutral is not None:
        data["design"]["neutral"] = float(prob.neutral)
    path = out / f"{stem}.toml"
    head = (
        f"# Written by hivemind design: {result.objective} ({result.sense}) with {result.intervention} within a budget of "
        f"{result.budget:g}, from {scenario.source}.\n# `hivemind run {path.name}` measures the objective at the end "
        "(manifest.json's design) against [design].value.\n"
    )
    path.write_text(head + tomli_w.dumps(data), encoding="utf-8")
    return path


def _states_file(data: dict, path: Path, states: np.ndarray, name: str) -> None:
    np.savetxt(path, states, fmt="%.17g", header=f"{name}: initial states, one row of ambient coordinates per node")
    init = data.setdefault("init", {})
    init.pop("states", None)
    init.update({"kind": "explicit", "path": path.name})
    for table in _anchor_tables(data):
        table.setdefault("state", "init")  # an anchor left at its default keeps its place: its row of the file


def _anchor_tables(data: dict) -> list[dict]:
    if "anchors" in data:
        return list(data["anchors"])
    if "anchor" in data:
        return [data["anchor"]]
    return []


def _relocate(data: dict, base: Path, out: Path) -> None:
    """Relative file paths of the input resolve against its folder: make them relative to ``out``."""
    for section, key in (("graph", "path"), ("init", "path")):
        table = data.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str) and not Path(table[key]).is_absolute():
            table[key] = os.path.relpath((base / table[key]).resolve(), out.resolve())


def _write_graph(path: Path, labels: list, prob: Problem, w: np.ndarray, directed: bool) -> None:
    graph = nx.DiGraph() if directed else nx.Graph()
    graph.add_nodes_from(str(v) for v in labels)
    src, dst = np.asarray(prob.ties.src), np.asarray(prob.ties.dst)
    for e in np.flatnonzero(w > 0):
        graph.add_edge(str(labels[src[e]]), str(labels[dst[e]]), weight=float(w[e]))
    nx.write_graphml(graph, path)


def equilibrium_steps(prob: Problem, params) -> tuple[float, int]:
    """(step size, steps) with which the ``gradient`` rule reaches the FJ equilibrium of ``params``.

    The engine's drift is (1 - theta_i)/m_i times the equilibrium's residual (``Problem.drift_scale``);
    its Jacobian's rows have absolute sums at most that times 2 d_i + g_i (Gershgorin), so the step
    1 / max of that is stable; the steps are counted by running the
    same iteration (x += step * drift, in float64, sparse) until it is within ``EQUILIBRIUM_TOL``
    of the solved equilibrium.
    """
    with jax.enable_x64(True):
        sys, value = prob.system(params)
        z = np.asarray(prob.fixed_point(params))
        a, g, held = sys.a, sys.g, sys.held
        d = degree(prob.ties, a)
        scale = prob.drift_scale(params) * (1.0 - held)
        # Gershgorin: the drift's Jacobian has rows of absolute sum at most scale * (2 d + g).
        bound = float(jnp.max(scale * (2.0 * d + g)))
        step = 1.0 / max(bound, 1e-12)
        s = jnp.where(held > 0, value, params.s)
        span = float(np.ptp(z)) or 1.0
        tol = EQUILIBRIUM_TOL * span
        zj = jnp.asarray(z)

        def body(carry):
            x, k = carry
            drift = scale * (neighbours_sum(prob.ties, a, x) - d * x + g * (s - x))
            return x + step * drift, k + 1

        def going(carry):
            x, k = carry
            return (jnp.max(jnp.abs(x - zj)) > tol) & (k < MAX_STEPS)

        _, k = jax.jit(lambda x: jax.lax.while_loop(going, body, (x, 0)))(s)
    return step, int(math.ceil(1.1 * int(k))) + 1
