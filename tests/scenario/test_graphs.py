"""Graph files from someone else: resolved against the scenario, plain files only, no entity expansion."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hivemind.cli import main
from tests.helpers import scenario_text

ROOT = Path(__file__).resolve().parents[2]


def graph_scenario(tmp_path: Path, path: str, anchor=0) -> Path:
    text = scenario_text(graph={"kind": "file", "path": path, "n": None}, anchor={"node": anchor})
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(text)
    return scenario


def validate(capsys, scenario: Path) -> tuple[int, str]:
    code = main(["validate", str(scenario)])
    captured = capsys.readouterr()
    return code, captured.err


def test_a_relative_graph_path_is_resolved_against_the_scenario_not_the_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "g.edges").write_text("0 1\n1 2\n2 0\n")
    scenario = graph_scenario(folder, "g.edges")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "g.edges").write_text("0 1\n")  # a decoy with the same name in the working directory
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from hivemind.cli import main; sys.exit(main(sys.argv[1:]))",
            "validate",
            str(scenario),
        ],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 agents, 3 edges" in proc.stdout


def test_a_symlink_loop_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "a.edges").symlink_to(tmp_path / "b.edges")
    (tmp_path / "b.edges").symlink_to(tmp_path / "a.edges")
    code, err = validate(capsys, graph_scenario(tmp_path, "a.edges"))
    assert code == 2 and err.count("\n") == 1 and "graph.path" in err and "symlink loop" in err


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/stdin"])
def test_a_device_file_is_refused_without_reading_it(tmp_path, capsys, device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    code, err = validate(capsys, graph_scenario(tmp_path, device))
    assert code == 2 and err.count("\n") == 1 and "not a regular file" in err


def test_a_link_to_a_device_and_a_fifo_are_refused(tmp_path, capsys):
    (tmp_path / "zero.edges").symlink_to("/dev/zero")
    code, err = validate(capsys, graph_scenario(tmp_path, "zero.edges"))
    assert code == 2 and "not a regular file" in err
    os.mkfifo(tmp_path / "pipe.edges")  # reading it would block forever
    code, err = validate(capsys, graph_scenario(tmp_path, "pipe.edges"))
    assert code == 2 and err.count("\n") == 1 and "not a regular file" in err


XXE = """<?xml version="1.0"?>
<!DOCTYPE graphml [<!ENTITY secret SYSTEM "file://{secret}">]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
<key id="d0" for="node" attr.name="label" attr.type="string"/>
<graph edgedefault="undirected">
<node id="0"><data key="d0">&secret;</data></node><node id="1"/><node id="2"/>
<edge source="0" target="1"/><edge source="1" target="2"/>
</graph></graphml>
"""


def test_graphml_with_an_external_entity_is_not_expanded(tmp_path, capsys):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN")
    (tmp_path / "xxe.graphml").write_text(XXE.format(secret=secret))
    code, err = validate(capsys, graph_scenario(tmp_path, "xxe.graphml"))
    assert code == 2 and err.count("\n") == 1 and "external entities are not expanded" in err
    assert "TOP-SECRET-TOKEN" not in err


def test_graphml_entity_bombs_do_not_expand(tmp_path, capsys):
    """Billion laughs: nested internal entities; expat's amplification limit stops them."""
    levels = ['<!ENTITY e0 "lol">'] + [f'<!ENTITY e{k} "{f"&e{k - 1};" * 10}">' for k in range(1, 10)]
    bomb = XXE.replace('<!ENTITY secret SYSTEM "file://{secret}">', "".join(levels)).replace("&secret;", "&e9;")
    (tmp_path / "bomb.graphml").write_text(bomb)
    code, err = validate(capsys, graph_scenario(tmp_path, "bomb.graphml"))
    assert code == 2 and err.count("\n") == 1 and "graph.path" in err


# Small values for the parameters a generator requires besides n (the size check reads them).
REQUIRED = {
    "k": 2, "m": 2, "p": 0.01, "d": 4, "r": 2, "m1": 2, "m2": 2, "gamma": 3.0, "tau1": 3.0, "tau2": 1.5, "mu": 0.1,
    "offsets": [1], "shift_list": [2], "repeats": 1, "p1": 0.5, "p2": 0.5, "radius": 0.1, "theta": 1.0, "beta": 0.5,
    "s": 10, "v": 1.0, "p_in": 0.5, "p_out": 0.1, "alpha": 0.5, "N": 10, "q": 0.5, "kernel_integral": None,
    "kernel_root": None, "mean_degree": 5.0, "number_of_trees": 1,
}  # fmt: skip


def sized_generators() -> list[str]:
    """Every networkx generator a scenario can name with graph.n (those taking a graph G cannot be named)."""
    import inspect

    import networkx as nx

    found = []
    for name in dir(nx):
        fn = getattr(nx, name)
        if not (callable(fn) and getattr(fn, "__module__", "").startswith("networkx.generators")):
            continue
        params = inspect.signature(fn).parameters
        if "n" in params and "G" not in params and name.endswith(("_graph", "_tree", "_forest", "_lobster")):
            found.append(name)
    return found


@pytest.mark.parametrize("name", sized_generators())
def test_a_billion_nodes_is_refused_before_networkx_is_called(name, monkeypatch):
    """graph.n = 10^9 for every networkx generator that takes n: one error naming graph.n and the
    GiB, and the generator never called (it would take the machine's memory first)."""
    import inspect

    import networkx as nx

    from hivemind.scenario import graphs

    fn = getattr(nx, name)
    params = inspect.signature(fn).parameters
    given = {
        k: REQUIRED[k]
        for k, v in params.items()
        if k not in ("n", "seed") and v.default is inspect.Parameter.empty and REQUIRED.get(k) is not None
    }
    monkeypatch.setattr(nx, name, lambda *a, **kw: pytest.fail(f"networkx.{name} was called"))
    monkeypatch.setattr(graphs, "generator", lambda kind: _renamed(fn, getattr(nx, name)))
    with pytest.raises(graphs.GraphError) as e:
        graphs.from_generator(name, 10**9, given, 0)
    assert e.value.key == "graph.n" and "more than this machine's" in e.value.message and "GiB" in e.value.message


def _renamed(real, stand_in):
    """stand_in with real's name and signature: what from_generator inspects."""
    import functools

    return functools.wraps(real)(stand_in)


@pytest.mark.parametrize(
    "kind, params, nodes",
    [
        ("grid_2d_graph", {"m": 100_000, "n": 100_000}, 2e10),
        ("balanced_tree", {"r": 10, "h": 10}, 1e11),
        ("caveman_graph", {"l": 100_000, "k": 100_000}, 1e10),
        ("complete_multipartite_graph", {"subset_sizes": [10**9, 10**9]}, 2e9),
        ("hypercube_graph", {"n": 10**9}, math.inf),
    ],
)
def test_generators_sized_by_their_parameters_are_refused_too(kind, params, nodes):
    from hivemind.scenario import graphs

    got, _, _ = graphs._nx_size(kind, params)
    assert got == pytest.approx(nodes)
    with pytest.raises(graphs.GraphError, match="GiB"):
        graphs.check_size("graph.params", got, 0, networkx=True)


def test_the_quickstart_with_a_billion_agents_is_one_line_and_exit_2(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "hivemind.cli", "run", str(ROOT / "scenarios/quickstart.toml"), "--set", "graph.n=1000000000",
         "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert "graph.n makes 1,000,000,000 nodes" in line and "GiB" in line and not (tmp_path / "run").exists()
