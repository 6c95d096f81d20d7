"""Friedkin–Johnsen without an anchor: every agent stubborn, Musco et al.'s stubbornness, initial
states from a file, and the run's documents without a distance to an anchor."""

from __future__ import annotations

import json

import jsonschema
import networkx as nx
import numpy as np
import pytest

from hivemind.cli import main
from hivemind.io.documents import schema
from hivemind.live.config import load_scenario
from hivemind.scenario import ScenarioError
from tests.design.reference import fj_scenario


def test_inverse_degree_is_one_over_one_plus_the_weight_a_node_hears(tmp_path):
    g = nx.Graph()
    g.add_weighted_edges_from([(0, 1, 2.0), (1, 2, 0.5), (2, 3, 1.0)])
    fj_scenario(tmp_path / "fj.toml", g, np.asarray([0.1, 0.2, 0.3, 0.4]))
    sc = load_scenario(tmp_path / "fj.toml")
    heard = np.asarray([2.0, 2.5, 1.5, 1.0])
    np.testing.assert_allclose(sc.stubbornness, 1.0 / (1.0 + heard))
    assert sc.anchors == () and sc.every_agent_stubborn


def test_without_a_stubborn_agent_everywhere_the_default_anchor_stays(tmp_path):
    g = nx.path_graph(4)
    fj_scenario(tmp_path / "fj.toml", g, np.zeros(4), agents={"stubbornness": [0.5, 0.5, 0.0, 0.5]})
    sc = load_scenario(tmp_path / "fj.toml")
    assert [a.node for a in sc.anchors] == [0]  # [anchor] left out: node 0, as before


@pytest.mark.parametrize(
    "text, key, words",
    [
        ("0.1\n0.2\nzero\n", "init.path", "line 3 must hold numbers"),
        ("0.1\n0.2\n", "init.path", "must have 4 rows (one per node), got 2"),
    ],
)
def test_a_bad_states_file_is_one_line_naming_the_key(tmp_path, text, key, words):
    fj_scenario(tmp_path / "fj.toml", nx.path_graph(4), np.zeros(4))
    (tmp_path / "fj.txt").write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "fj.toml")
    assert f"{key} " in str(info.value) and words in str(info.value) and "\n" not in str(info.value)


def test_a_missing_states_file_and_a_cap_without_an_anchor_are_one_line(tmp_path):
    fj_scenario(tmp_path / "fj.toml", nx.path_graph(4), np.zeros(4), init={"path": "nowhere.txt"})
    with pytest.raises(ScenarioError, match="init.path cannot be read"):
        load_scenario(tmp_path / "fj.toml")
    fj_scenario(tmp_path / "cap.toml", nx.path_graph(4), np.zeros(4))
    text = (tmp_path / "cap.toml").read_text().replace('path = "cap.txt"\n', "").replace('kind = "explicit"', 'kind = "cap"')
    (tmp_path / "cap.toml").write_text(text)
    with pytest.raises(ScenarioError, match='init.kind is "cap"'):
        load_scenario(tmp_path / "cap.toml")


def test_a_run_without_an_anchor_writes_valid_documents_and_says_what_it_can(tmp_path, capsys):
    g = nx.karate_club_graph()
    s = np.random.default_rng(0).uniform(0, 1, 34)
    fj_scenario(tmp_path / "fj.toml", g, s, dynamics={"steps": 200}, record={"every": 50})
    out = tmp_path / "run"
    assert main(["run", str(tmp_path / "fj.toml"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    jsonschema.validate(manifest, schema("manifest"))
    assert manifest["summary"]["final_distance_mean"] is None and manifest["design"] is None
    # the verdict is the dispersion the run recorded
    assert f"mean pairwise distance {manifest['summary']['final_dispersion']:.4g}" in printed
    assert "no anchor (every agent stubborn)" in printed
    assert main(["plot", str(out)]) == 2
    assert "has no distance to one to plot" in capsys.readouterr().err
