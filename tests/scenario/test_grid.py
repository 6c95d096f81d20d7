"""Sweep grids: a point that changes only traced numbers is the scenario replaced, equal to the
file read again with the point's overrides, and refused with the file's own words."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivemind.scenario import ScenarioError, load_scenario, parse_scenario
from hivemind.scenario.grid import SweepError, _toml, make_grid, point_scenarios

ROOT = Path(__file__).resolve().parents[2]


def reread(scenario, keys, point, seeds):
    sets = [f"{k}={_toml(v)}" for k, v in zip(keys, point, strict=True)]
    return parse_scenario(scenario.text, scenario.source, Path(scenario.base), (*scenario.overrides, *sets), seeds=seeds)


def test_traced_points_equal_the_file_read_again_without_rebuilding_the_graph():
    base = load_scenario(ROOT / "scenarios" / "quickstart.toml", ["dynamics.steps=50"])
    grid = make_grid({"dynamics.step_size": [0.01, 2], "dynamics.noise": [0, 0.25], "dynamics.confidence": [0.5]})
    points = point_scenarios(base, grid, (0, 3))
    assert len(points) == 4
    for point, s in zip(grid.points(), points, strict=True):
        other = reread(base, grid.keys, point, (0, 3))
        assert s.to_dict() == other.to_dict() and s.fingerprint == other.fingerprint and s.overrides == other.overrides
        assert s.arrays is base.arrays  # the graph was not built again
        assert s.dynamics.step_size == float(point[0]) and isinstance(s.dynamics.step_size, float)


def test_a_structural_key_is_read_from_the_file():
    base = load_scenario(ROOT / "scenarios" / "quickstart.toml", ["dynamics.steps=50"])
    grid = make_grid({"graph.n": [30], "dynamics.step_size": [0.02]})
    (s,) = point_scenarios(base, grid, (0,))
    assert s.arrays.n_nodes == 30 and s.to_dict() == reread(base, grid.keys, (30, 0.02), (0,)).to_dict()


@pytest.mark.parametrize(
    "key, value",
    [("dynamics.step_size", -1), ("dynamics.gossip_prob", 1.5), ("dynamics.noise", "loud"), ("dynamics.confidence", True)],
)
def test_a_bad_traced_value_is_refused_as_the_file_would_refuse_it(key, value):
    base = load_scenario(ROOT / "scenarios" / "quickstart.toml")
    with pytest.raises(ScenarioError) as from_file:
        reread(base, (key,), (value,), (0,))
    with pytest.raises(SweepError) as from_grid:
        point_scenarios(base, make_grid({key: [value]}), (0,))
    assert str(from_grid.value) == str(from_file.value) and key in str(from_grid.value)
