"""What `hivemind run` writes: run.nc with labelled dimensions, manifest.json, partial saves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import scenario_text

from hivemind import load_run, load_scenario, simulate
from hivemind.cli import main
from hivemind.io.results import RunDirError

ROOT = Path(__file__).resolve().parents[2]


def test_run_writes_labelled_dataset_and_manifest(tmp_path, capsys):
    edges = [[0, 1, 2.0], [1, 2, 1.0], [2, 3, 0.5], [3, 0, 1.0]]
    src = tmp_path / "s.toml"
    src.write_text(
        scenario_text(
            graph={"kind": "edges", "n": 4, "edges": edges},
            anchor={"node": 2},
            dynamics={"steps": 95},
            record={"every": 10},
            run={"seeds": [4, 9]},
        )
    )
    out = tmp_path / "run"
    assert main(["run", str(src), "--out", str(out), "--quiet"]) == 0
    assert "results:" in capsys.readouterr().out
    ds = load_run(out)
    assert dict(ds.sizes) == {"seed": 2, "step": 11, "agent": 4, "coord": 3, "edge": 4, "anchor": 1}
    np.testing.assert_array_equal(ds.step.values, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95])
    np.testing.assert_array_equal(ds.seed.values, [4, 9])
    assert ds.attrs["anchor"] == 2 and ds.attrs["manifold"] == "sphere"
    stored = {
        (min(u, v), max(u, v), w) for u, v, w in zip(ds.edge_src.values, ds.edge_dst.values, ds.edge_weight.values, strict=True)
    }
    assert stored == {(min(u, v), max(u, v), w) for u, v, w in edges}
    assert ds.state.dims == ("seed", "step", "agent", "coord")
    assert ds.distance_to_anchor.dims == ("seed", "step", "agent") and ds.loss.dims == ("seed", "step")
    # distance_to_anchor is the geodesic distance between the stored states (independent formula: arccos)
    x = ds.state.values
    cos = np.clip(np.einsum("stad,std->sta", x, x[:, :, 2]), -1, 1)
    np.testing.assert_allclose(ds.distance_to_anchor.values, np.arccos(cos), atol=2e-3)
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["seeds"] == [4, 9] and meta["scenario"]["dynamics"]["steps"] == 95
    assert set(meta["versions"]) >= {"hivemind", "jax", "numpy"} and meta["wall_time_s"] > 0
    assert meta["scenario_text"] == src.read_text() and len(meta["scenario_sha256"]) == 64
    assert meta["summary"]["final_step"] == 95 and meta["summary"]["agents"] == 3
    # gradient rule: the manifest carries the grounded-Laplacian prediction beside the measurement
    assert meta["theory"]["predicted"]["stable"] and 0 < meta["theory"]["predicted"]["rho"] < 1


def test_diverged_run_saves_what_it_recorded_and_exits_1(tmp_path, capsys):
    src = tmp_path / "s.toml"
    src.write_text(
        scenario_text(
            manifold={"kind": "euclidean", "dim": 2},
            graph={"kind": "complete", "n": 8},
            dynamics={"step_size": 3.0, "steps": 500},
        )
    )
    out = tmp_path / "run"
    assert main(["run", str(src), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "numerical blow-up" in err and "smaller dynamics.step_size" in err and err.count("\n") == 0
    ds = load_run(out)
    assert ds.sizes["step"] >= 1 and np.isfinite(ds.state.values).all()
    assert json.loads((out / "manifest.json").read_text())["status"].startswith("diverged")


def test_plotting_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(RunDirError, match="not a hivemind run"):
        load_run(tmp_path)
    (tmp_path / "run.nc").write_text("garbage")
    with pytest.raises(RunDirError, match="cannot be read"):
        load_run(tmp_path)


def test_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    src = tmp_path / "s.toml"
    src.write_text(scenario_text())
    (tmp_path / "file").write_text("x")
    assert main(["run", str(src), "--out", str(tmp_path / "file")]) == 2
    assert "is not a directory" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart", "hyperbolic", "euclidean", "stochastic"])
def test_shipped_scenarios_reach_the_anchor(name):
    s = load_scenario(ROOT / "scenarios" / f"{name}.toml")
    ds = simulate(s)
    final = ds.distance_to_anchor.isel(step=-1).values
    assert final.max() < 1e-3, f"{name}: max final distance {final.max()}"
    assert ds.distance_to_anchor.isel(step=0).values.mean() > 0.5
