"""Scenario files: every bad input gives one line naming the file and the key, exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import scenario_text

from hivemind import ScenarioError, load_scenario
from hivemind.cli import main
from hivemind.scenario import parse_override

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BAD = [
    # (sections for scenario_text, key expected in the message, words expected)
    ({"bogus": {"x": 1}}, "bogus", "is not a known section"),
    ({"dynamics": {"stepsize": 0.1}}, "dynamics.stepsize", "is not a known key"),
    ({"dynamics": {"step_size": -1}}, "dynamics.step_size", "must be > 0, got -1"),
    ({"dynamics": {"step_size": 0}}, "dynamics.step_size", "must be > 0"),
    ({"dynamics": {"step_size": "fast"}}, "dynamics.step_size", "must be a number, got 'fast'"),
    ({"dynamics": {"steps": 1.5}}, "dynamics.steps", "must be an integer"),
    ({"dynamics": {"steps": 0}}, "dynamics.steps", "must be >= 1"),
    ({"dynamics": {"rule": "teleport"}}, "dynamics.rule", "must be one of gradient, stochastic, gossip or an optax optimizer"),
    ({"dynamics": {"noise": -0.1}}, "dynamics.noise", "must be >= 0"),
    ({"dynamics": {"noise_schedule": "cosine"}}, "dynamics.noise_schedule", "must be one of constant, inverse, exponential"),
    ({"dynamics": {"rule": "adam", "options": {"b3": 0.1}}}, "dynamics.options.b3", "is not an option of optax.adam"),
    ({"dynamics": {"options": {"momentum": 0.9}}}, "dynamics.options", "applies to optax optimizers only"),
    ({"manifold": {"dim": 0}}, "manifold.dim", "must be >= 1, got 0"),
    ({"manifold": {"kind": "torus"}}, "manifold.kind", "must be one of sphere, hyperbolic, euclidean"),
    ({"manifold": None}, "manifold.kind", "is required"),
    ({"graph": {"n": 1}}, "graph.n", "must be >= 2, got 1"),
    ({"graph": {"kind": "not_a_graph"}}, "graph.kind", "is not a networkx generator"),
    ({"graph": {"kind": "write_graphml"}}, "graph.kind", "is not a networkx generator"),
    (
        {"graph": {"kind": "barabasi_albert", "params": {"q": 3}}},
        "graph.params.q",
        "is not a parameter of networkx.barabasi_albert_graph",
    ),
    ({"graph": {"kind": "barabasi_albert", "params": {"m": 10}}}, "graph.params", "barabasi_albert_graph failed"),
    ({"graph": {"kind": "edges", "edges": [[0, 9]]}}, "graph.edges[0]", "must name nodes 0..5"),
    ({"graph": {"kind": "edges", "edges": [[0, 1, -2.0]]}}, "graph.edges[0]", "weight must be finite and >= 0"),
    ({"graph": {"kind": "file", "path": "missing.graphml"}}, "graph.path", "file not found"),
    ({"anchor": {"node": 99}}, "anchor.node", "is not a node of the graph (6 nodes), got 99"),
    ({"anchor": {"coupling": -1.0}}, "anchor.coupling", "must be >= 0"),
    ({"anchor": {"state": [1.0, 0.0]}}, "anchor.state", "row 0 must have 3 numbers"),
    ({"anchor": {"state": [1.0, 1.0, 0.0]}}, "anchor.state", "is not on the sphere"),
    ({"anchor": {"state": "init"}}, "anchor.state", "can be 'init' only with init.kind = 'explicit'"),
    ({"init": {"kind": "explicit", "states": [[1.0, 0.0, 0.0]] * 5}}, "init.states", "must have 6 rows (one per node), got 5"),
    ({"init": {"kind": "explicit", "states": [[1.0, 0.0]] * 6}}, "init.states", "row 0 must have 3 numbers"),
    ({"init": {"kind": "explicit", "states": [[2.0, 0.0, 0.0]] * 6}}, "init.states", "row 0 is not on the sphere"),
    ({"init": {"kind": "explicit"}}, "init.states", "is required"),
    ({"init": {"spread": 4.0}}, "init.spread", "must be <= pi on the sphere"),
    ({"init": {"kind": "blob"}}, "init.kind", "must be one of random, cap, explicit"),
    ({"record": {"every": 0}}, "record.every", "must be >= 1"),
    ({"run": {"seeds": []}}, "run.seeds", "must not be empty"),
    ({"run": {"seeds": [1, 1]}}, "run.seeds", "must not repeat a seed"),
    ({"run": {"seeds": [0], "seed": 0}}, "run.seeds", "cannot be given together with run.seed"),
    ({"run": {"precision": "float16"}}, "run.precision", "must be one of float32, float64"),
    ({"agents": {"inertia": -1.0}}, "agents.inertia", "must be 'degree', 'active' or finite numbers > 0"),
    ({"agents": {"inertia": [1.0, 2.0]}}, "agents.inertia", "must have one value per node (6), got 2"),
    ({"agents": {"stubbornness": 1.5}}, "agents.stubbornness", "must be numbers in [0, 1], got 1.5"),
    ({"agents": {"stubbornness": -0.1}}, "agents.stubbornness", "must be numbers in [0, 1]"),
    ({"agents": {"stubbornness": [0.5, 0.5]}}, "agents.stubbornness", "must have one value per node (6), got 2"),
    ({"agents": {"stubbornness": {"3": 2.0}}}, "agents.stubbornness.3", "must be numbers in [0, 1], got 2.0"),
    ({"agents": {"stubbornness": {"nine": 0.5}}}, "agents.stubbornness.nine", "is not a node of the graph"),
    ({"agents": {"stubbornness": "high"}}, "agents.stubbornness", "must be numbers in [0, 1] or \"inverse_degree\", got 'high'"),
    ({"dynamics": {"confidence": 0.0}}, "dynamics.confidence", "must be > 0, got 0.0"),
    ({"dynamics": {"confidence": -1.0}}, "dynamics.confidence", "must be > 0"),
    ({"record": {"cluster_tol": 0.0}}, "record.cluster_tol", "must be > 0"),
]

ANCHORS = scenario_text(anchor=None)


@pytest.mark.parametrize(
    ("anchors", "key", "words"),
    [
        ("[[anchors]]\nnode = 0\n[[anchors]]\nnode = 0\n", "anchors[1].node", "names node 0, which anchors[0] already anchors"),
        ("[anchors]\nnode = 0\n", "anchors", "must be an array of tables ([[anchors]] blocks)"),
        ("anchors = []\n", "anchors", "must hold at least one anchor"),
        ("[anchor]\nnode = 1\n[[anchors]]\nnode = 0\n", "anchors", "cannot be given together with [anchor]"),
        ("[[anchors]]\nnode = 0\ncoupling = -2.0\n", "anchors[0].coupling", "must be >= 0"),
        ("[[anchors]]\nnode = 0\n[[anchors]]\nnode = 77\n", "anchors[1].node", "is not a node of the graph"),
        ("[[anchors]]\nnode = 0\nweight = 3\n", "anchors[0].weight", "is not a known key"),
        ("[[anchors]]\nnode = 0\nstate = [1.0, 1.0, 1.0]\n", "anchors[0].state", "is not on the sphere"),
    ],
)
def test_bad_anchor_tables_name_the_key(tmp_path, anchors, key, words):
    text = (
        ANCHORS.replace('name = "test"\n', 'name = "test"\n' + anchors) if anchors.startswith("anchors =") else ANCHORS + anchors
    )
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key} "), message
    assert words in message and "\n" not in message


def test_several_anchors_and_per_node_stubbornness_are_read(tmp_path):
    text = ANCHORS.replace("[agents]", "") + (
        "[[anchors]]\nnode = 0\ncoupling = 2.0\n[[anchors]]\nnode = 3\nstate = [0.0, 0.0, 1.0]\n"
        "[agents]\nstubbornness = { 1 = 0.25, 4 = 1.0 }\n"
    )
    s = load_scenario(write(tmp_path, text))
    assert s.anchor_indices == (0, 3) and [a.coupling for a in s.anchors] == [2.0, 1.0]
    np.testing.assert_array_equal(s.stubbornness, [0, 0.25, 0, 0, 1.0, 0])
    single = load_scenario(write(tmp_path, scenario_text(agents={"stubbornness": 0.5})))
    np.testing.assert_array_equal(single.stubbornness, [0, 0.5, 0.5, 0.5, 0.5, 0.5])  # never at the anchor


@pytest.mark.parametrize(("sections", "key", "words"), BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_bad_input_names_file_and_key(tmp_path, sections, key, words):
    path = write(tmp_path, scenario_text(**sections))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key} "), message
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name = 'x'\n[manifold\nkind = 1", "is not valid TOML"),
        ("\x00\x01", "is not valid TOML"),
        ("manifold = 3\n", "manifold must be a table"),
        ("name = 3\n", "name must be a string"),
        ("stray = 1\n[manifold]\nkind='sphere'\ndim=2\n", "stray is not a known key"),
        ("[grpah]\nkind='cycle'\n", "grpah is not a known section"),
    ],
)
def test_files_that_are_not_scenarios(tmp_path, text, words):
    with pytest.raises(ScenarioError, match=words):
        load_scenario(write(tmp_path, text))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)


def test_cli_prints_one_line_and_exits_2_without_traceback(tmp_path):
    path = write(tmp_path, scenario_text(dynamics={"step_size": -1}))
    out = subprocess.run(
        [sys.executable, "-m", "hivemind.cli", "run", str(path), "--out", str(tmp_path / "r")], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"{path}: dynamics.step_size must be > 0, got -1.0"
    assert "Traceback" not in out.stderr and not (tmp_path / "r").exists()


def test_validate_and_set_overrides(tmp_path, capsys):
    path = write(tmp_path, scenario_text())
    assert main(["validate", str(path)]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["validate", str(path), "--set", "dynamics.step_size=-2"]) == 2
    assert capsys.readouterr().err.strip() == f"{path}: dynamics.step_size must be > 0, got -2.0"
    s = load_scenario(path, ["dynamics.steps=500", "dynamics.rule=stochastic", "run.seeds=[1, 2]", "manifold.kind=euclidean"])
    assert (s.dynamics.steps, s.dynamics.rule, s.run.seeds, s.manifold.kind) == (500, "stochastic", (1, 2), "euclidean")
    assert parse_override("a.b=hello world") == ("a.b", "hello world")
    assert parse_override("a.b='x'") == ("a.b", "x")
    assert parse_override("a=1e-3") == ("a", 1e-3)
    with pytest.raises(ScenarioError, match="expected key=value"):
        parse_override("novalue")


def test_graph_from_edges_file_graphml_and_generators(tmp_path):
    edgelist = write(tmp_path, "# a weighted triangle plus a tail\n0 1 2.5\n1 2\n2 0 0.5\n2 3\n", "g.txt")
    s = load_scenario(write(tmp_path, scenario_text(graph={"kind": "file", "path": edgelist.name, "n": None})))
    a = s.arrays
    assert a.n_nodes == 4 and a.src.size == 4 and not a.directed
    assert sorted(a.weight.tolist()) == [0.5, 1.0, 1.0, 2.5]

    import networkx as nx

    g = nx.DiGraph()
    g.add_edge("a", "b", weight=2.0)
    g.add_edge("b", "c")
    nx.write_graphml(g, tmp_path / "g.graphml")
    s = load_scenario(
        write(tmp_path, scenario_text(graph={"kind": "file", "path": "g.graphml", "n": None}, anchor={"node": "a"}))
    )
    assert s.arrays.directed and s.arrays.labels == ["a", "b", "c"] and s.anchor_index == 0

    s = load_scenario(
        write(tmp_path, scenario_text(graph={"kind": "watts_strogatz", "n": 20, "params": {"k": 4, "p": 0.2}, "seed": 3}))
    )
    expected = nx.watts_strogatz_graph(20, 4, 0.2, seed=3)
    assert s.arrays.src.size == expected.number_of_edges()

    truncated = write(tmp_path, "<graphml><graph><node id='a'/>", "bad.graphml")
    with pytest.raises(ScenarioError, match="graph.path .* is not valid GraphML"):
        load_scenario(write(tmp_path, scenario_text(graph={"kind": "file", "path": truncated.name, "n": None})))
    badw = write(tmp_path, "0 1 heavy\n", "w.txt")
    with pytest.raises(ScenarioError, match="weight must be a number, got 'heavy'"):
        load_scenario(write(tmp_path, scenario_text(graph={"kind": "file", "path": badw.name, "n": None})))


def test_explicit_states_are_projected_and_the_anchor_takes_its_row(tmp_path):
    states = [[1.0, 0.0, 0.0], [0.0, 1.00001, 0.0], [0.0, 0.0, 1.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8], [0.8, 0.0, 0.6]]
    s = load_scenario(
        write(
            tmp_path,
            scenario_text(init={"kind": "explicit", "states": states}, anchor={"node": 3, "state": None}, dynamics={"steps": 1}),
        )
    )
    from hivemind import simulate

    x0 = simulate(s).state.isel(seed=0, step=0).values
    np.testing.assert_allclose(np.linalg.norm(x0, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(x0[3], [0.6, 0.8, 0.0], atol=1e-6)


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_scenarios_validate(path):
    assert load_scenario(path).arrays.n_nodes >= 2


def test_file_graph_size_must_match_n(tmp_path):
    write(tmp_path, "0 1\n1 2\n", "g.txt")
    with pytest.raises(ScenarioError, match=r"graph.n is 6 but g.txt has 3 nodes"):
        load_scenario(write(tmp_path, scenario_text(graph={"kind": "file", "path": "g.txt"})))


def test_set_reaches_into_an_array_of_anchor_tables(tmp_path):
    text = ANCHORS + "[[anchors]]\nnode = 0\n[[anchors]]\nnode = 3\ncoupling = 1.0\n"
    path = write(tmp_path, text)
    s = load_scenario(path, ["anchors[1].coupling=2.5", "anchors[0].node=1"])
    assert [a.coupling for a in s.anchors] == [1.0, 2.5] and s.anchor_indices == (1, 3)
    with pytest.raises(ScenarioError, match=r"anchors\[2\]\.coupling cannot be set: anchors has 2 tables, no \[2\]"):
        load_scenario(path, ["anchors[2].coupling=1"])
