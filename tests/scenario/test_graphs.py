"""Graph files from someone else: resolved against the scenario, plain files only, no entity expansion."""

from __future__ import annotations

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
