"""``hivemind design`` end to end: design.json against its schema, the designed scenario run by
``hivemind run`` reproducing the design's value, and bad input as one line with nothing written."""

from __future__ import annotations

import json

import jsonschema
import networkx as nx
import numpy as np
import pytest

from hivemind.cli import main
from hivemind.io.documents import schema
from tests.design.reference import fj_scenario
from tests.helpers import scenario_text


@pytest.fixture
def musco(tmp_path):
    g = nx.barabasi_albert_graph(60, 2, seed=4)
    s = np.random.default_rng(5).uniform(0, 1, 60)
    fj_scenario(tmp_path / "in" / "fj.toml", g, s)
    return tmp_path / "in" / "fj.toml"


def _run_design(capsys, *args) -> tuple[int, str, str]:
    code = main(["design", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_an_innate_design_writes_its_documents_and_its_designed_scenario_reproduces_the_value(musco, tmp_path, capsys):
    out = tmp_path / "out"
    code, printed, err = _run_design(
        capsys, musco, "--objective", "polarization_disagreement", "--intervene", "innate", "--budget", "1,3", "--out", out
    )
    assert code == 0, err
    doc = json.loads((out / "design.json").read_text())
    jsonschema.validate(doc, schema("design"))
    assert [b["budget"] for b in doc["budgets"]] == [1.0, 3.0]
    assert doc["value"] == doc["budgets"][-1]["value"] < doc["budgets"][0]["value"] < doc["baseline"]
    assert doc["change"]["l1"] == pytest.approx(3.0, rel=1e-9)
    assert f"to {doc['value']:.6g}" in printed
    html = (out / "report.html").read_text()
    assert "Against the heuristics" in html and "<svg" in html
    for designed, value in ((out / "designed.toml", doc["value"]), (out / "designed_b1.toml", doc["budgets"][0]["value"])):
        run = tmp_path / f"run_{designed.stem}"
        assert main(["run", str(designed), "--out", str(run)]) == 0
        check = json.loads((run / "manifest.json").read_text())["design"]
        assert check["designed"] == pytest.approx(value, rel=1e-15)
        assert check["measured"] == pytest.approx(value, rel=1e-7)
        assert "hivemind design found" in capsys.readouterr().out


@pytest.mark.slow
def test_a_stubborn_design_on_a_horizon_reproduces_its_value_in_the_engine(tmp_path, capsys):
    path = tmp_path / "sphere.toml"
    path.write_text(
        scenario_text(
            graph={"kind": "barabasi_albert", "n": 30, "params": {"m": 2}},
            agents={"inertia": "degree"},
            dynamics={"step_size": 0.5, "steps": 40},
        )
    )
    out = tmp_path / "out"
    code, printed, err = _run_design(
        capsys, path, "--objective", "diversity", "--intervene", "stubborn", "--budget", "3", "--horizon", "25", "--out", out
    )
    assert code == 0, err
    doc = json.loads((out / "design.json").read_text())
    jsonschema.validate(doc, schema("design"))
    assert set(doc["heuristics"]) == {"greedy", "degree", "pagerank", "random"}
    assert len(doc["change"]["chosen"]) == 3
    assert main(["run", str(out / "designed.toml"), "--out", str(tmp_path / "run")]) == 0
    check = json.loads((tmp_path / "run" / "manifest.json").read_text())["design"]
    assert check["measured"] == pytest.approx(doc["value"], rel=1e-9)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--objective", "consensus", "--intervene", "innate", "--budget", "1"], "--objective must be one of"),
        (["--objective", "polarization", "--intervene", "nudge", "--budget", "1"], "--intervene must be one of"),
        (["--objective", "polarization", "--intervene", "innate", "--budget", "-1"], "--budget must be a finite number >= 0"),
        (["--objective", "polarization", "--intervene", "innate", "--budget", "two"], "--budget must be numbers"),
        (["--objective", "polarization", "--intervene", "stubborn", "--budget", "61"], "more than the 60 agents"),
        (["--objective", "polarization", "--intervene", "stubborn", "--budget", "2.5"], "whole number of agents"),
        (["--objective", "polarization", "--intervene", "remove", "--budget", "1000"], "more than the 116 ties"),
        (["--objective", "diversity", "--intervene", "innate", "--budget", "1"], "--horizon must be a number of steps"),
        (["--objective", "collapse", "--intervene", "innate", "--budget", "1", "--horizon", "5"], "has none"),
    ],
)
def test_bad_input_is_one_line_with_exit_status_2_and_nothing_written(musco, tmp_path, capsys, args, words):
    out = tmp_path / "out"
    code, _, err = _run_design(capsys, musco, *args, "--out", out)
    assert code == 2
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_scenario_the_objective_cannot_take_is_one_line(tmp_path, capsys):
    path = tmp_path / "sphere.toml"
    path.write_text(scenario_text())
    out = tmp_path / "out"
    code, _, err = _run_design(
        capsys, path, "--objective", "polarization", "--intervene", "innate", "--budget", "1", "--out", out
    )
    assert code == 2 and "manifold:" in err and "euclidean" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_the_help_names_every_objective():
    from hivemind.cli.design import OBJECTIVES_HELP
    from hivemind.design import OBJECTIVES
    from hivemind.scenario.names import EQUILIBRIUM_OBJECTIVES, HORIZON_OBJECTIVES

    assert set(OBJECTIVES) == set(EQUILIBRIUM_OBJECTIVES + HORIZON_OBJECTIVES)
    for names, where in ((EQUILIBRIUM_OBJECTIVES, "at the FJ equilibrium"), (HORIZON_OBJECTIVES, "after --horizon steps")):
        listed = OBJECTIVES_HELP.split(where + ": ")[1].split(";")[0]
        assert listed.split(", ") == list(names)


@pytest.mark.slow
def test_moving_the_anchor_on_the_sphere_reproduces_its_value_in_the_engine(tmp_path, capsys):
    path = tmp_path / "sphere.toml"
    path.write_text(scenario_text(graph={"kind": "barabasi_albert", "n": 20, "params": {"m": 2}}, dynamics={"steps": 30}))
    out = tmp_path / "out"
    code, _, err = _run_design(
        capsys, path, "--objective", "collapse", "--intervene", "anchor", "--anchor", "position", "--budget", "0.3",
        "--horizon", "20", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads((out / "design.json").read_text())
    jsonschema.validate(doc, schema("design"))
    (moved,) = doc["change"]["anchors"]
    cos = float(np.dot(moved["before"], moved["after"]))
    assert np.arccos(min(1.0, cos)) <= 0.3 + 1e-9  # moved at most the budget, geodesically
    assert doc["value"] >= doc["baseline"]
    assert main(["run", str(out / "designed.toml"), "--out", str(tmp_path / "run")]) == 0
    check = json.loads((tmp_path / "run" / "manifest.json").read_text())["design"]
    assert check["measured"] == pytest.approx(doc["value"], rel=1e-9)


def test_hivemind_design_is_the_design_function_before_and_after_its_modules_are_imported(musco):
    import hivemind

    scenario = hivemind.load_scenario(musco)
    first = hivemind.design(scenario, "polarization", "innate", 1.0, steps=30)
    import hivemind.design.problem  # noqa: F401  (makes hivemind.design the package)
    from hivemind.design import DesignResult, design

    second = hivemind.design(scenario, "polarization", "innate", 1.0, steps=30)
    assert (
        isinstance(first, DesignResult)
        and first.value == second.value == design(scenario, "polarization", "innate", 1.0, steps=30).value
    )
