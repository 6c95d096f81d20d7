"""hivemind sweep: a grid of scenarios in one compiled, batched computation that equals plain runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hivemind import simulate
from hivemind.cli import main
from hivemind.engine.kernel import advance, start
from hivemind.runner import sweep as sweep_module
from hivemind.runner.sweep import SweepError, parse_values, sweep
from hivemind.scenario import load_scenario, parse_scenario
from tests.helpers import scenario_text

ROOT = Path(__file__).resolve().parents[2]

SMALL = scenario_text(
    manifold={"kind": "sphere", "dim": 3},
    graph={"kind": "barabasi_albert", "n": 30, "params": {"m": 2}},
    dynamics={"rule": "gradient", "step_size": 0.05, "steps": 300},
    record={"every": 10},
)


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def plain_run(path: Path, sets: list[str], seeds) -> xr.Dataset:
    return simulate(parse_scenario(path.read_text(), str(path), path.parent, sets, seeds=tuple(seeds)))


def test_every_grid_point_equals_a_plain_run(small):
    """Step sizes (one number per point) leave each point's program as the plain run's, couplings
    change the edge weights per point, which the batched pull lays out differently: float32
    rounding, no more. Bit for bit (step sizes) and 1 ulp (couplings) on the AVX-512 machine this
    was written on; on an AVX2 one, whose vectors sum a batch of runs in another order, up to 4 and
    9 ulp (2.4e-7 and 5.4e-7 at 0.6-0.8, measured): the bound is 16 ulp at magnitude 1 for both."""
    ds = sweep(load_scenario(small), {"dynamics.step_size": [0.02, 0.05, 0.1], "anchor.coupling": [0.5, 2.0]}, seeds=2)
    assert ds.final_mean_distance.dims == ("dynamics.step_size", "anchor.coupling", "seed")
    steps_only = sweep(load_scenario(small, ["anchor.coupling=2.0"]), {"dynamics.step_size": [0.02, 0.05, 0.1]}, seeds=2)
    for eta in (0.02, 0.1):
        for kappa in (0.5, 2.0):
            ref = plain_run(small, [f"dynamics.step_size={eta}", f"anchor.coupling={kappa}"], (0, 1))
            final = ref.state.isel(step=-1).values
            point = ds.sel({"dynamics.step_size": eta, "anchor.coupling": kappa})
            np.testing.assert_allclose(point.final_state.values, final, rtol=0, atol=16 * np.finfo(np.float32).eps)
            if kappa == 2.0:
                got = steps_only.final_state.sel({"dynamics.step_size": eta}).values
                np.testing.assert_allclose(got, final, rtol=0, atol=16 * np.finfo(np.float32).eps)
            mobile = ref.is_anchor.values == 0
            expected = ref.distance_to_anchor.isel(step=-1).values[:, mobile].mean(axis=1)
            np.testing.assert_allclose(point.final_mean_distance.values, expected, rtol=1e-4, atol=1e-6)  # float32 floor
            np.testing.assert_allclose(point.final_loss.values, ref.loss.isel(step=-1).values, rtol=1e-4, atol=1e-9)
            assert (point.clusters.values == ref.clusters.isel(step=-1).values).all()


def test_stubbornness_and_confidence_points_equal_plain_runs_to_rounding(small):
    """A group that sweeps theta = 0 with theta > 0 runs one program with the stubborn term for all:
    exact in arithmetic, but XLA fuses it differently, so float32 rounding (1 ulp here) separates them."""
    grid = {"agents.stubbornness": [0.0, 0.3], "dynamics.confidence": [0.5, 10.0]}
    ds = sweep(load_scenario(small), grid, seeds=2)
    for theta in (0.0, 0.3):
        for eps in (0.5, 10.0):
            ref = plain_run(small, [f"agents.stubbornness={theta}", f"dynamics.confidence={eps}"], (0, 1))
            point = ds.sel({"agents.stubbornness": theta, "dynamics.confidence": eps})
            np.testing.assert_allclose(point.final_state.values, ref.state.isel(step=-1).values, rtol=0, atol=1e-5)
    far = ds.final_mean_distance.sel({"dynamics.confidence": 10.0})
    assert (far.sel({"agents.stubbornness": 0.3}) > far.sel({"agents.stubbornness": 0.0})).all()  # stubborn agents stay away


def test_numeric_keys_do_not_recompile_between_points(small):
    """16 step sizes: the kernel's one program to start and one per chunk shape, each compiled once,
    whatever the points; then a plain run compiles the same two functions for its own layout."""
    start.clear_cache()
    advance.clear_cache()
    ds = sweep(load_scenario(small), {"dynamics.step_size": list(np.geomspace(0.005, 0.1, 16))}, seeds=2)
    assert np.isfinite(ds.final_mean_distance.values).all()
    assert start._cache_size() == 1
    assert advance._cache_size() == 1  # the 30 records of 300 steps: 15 chunks of 2 records, one shape
    plain_run(small, [], (0, 1))
    assert (start._cache_size(), advance._cache_size()) == (2, 2)  # simulate shares them, with its own layout


def test_steps_to_tolerance_and_the_stability_boundary_follow_the_theory(small):
    s = load_scenario(small, ["run.precision='float64'", "dynamics.steps=3000"])
    ds = sweep(s, {"dynamics.step_size": [0.02, 0.05, 3.0]}, seeds=1, tol=1e-3)
    lam = float(ds.lambda_max.values[0])
    stable = ds["dynamics.step_size"].values * lam < 2
    assert stable[:2].all() and not stable[2]
    assert np.isnan(ds.predicted_rate.values[2]) and np.isfinite(ds.predicted_rate.values[:2]).all()
    steps = ds.steps_to_tolerance.values[:, 0]
    assert steps[1] < steps[0]  # a larger stable step converges sooner
    recorded = ds.mean_distance.isel(seed=0).values
    k = int(np.argmax(recorded[1] < 1e-3))
    assert ds.step.values[k] == steps[1] and recorded[1, k - 1] >= 1e-3


@pytest.mark.slow
def test_structural_keys_compile_once_per_value_and_group(small):
    ds = sweep(load_scenario(small), {"graph.n": [20, 30], "dynamics.step_size": [0.02, 0.05]}, seeds=1)
    assert ds.final_mean_distance.shape == (2, 2, 1)
    ref = plain_run(small, ["graph.n=20", "dynamics.step_size=0.05"], (0,))
    mobile = ref.is_anchor.values == 0
    np.testing.assert_allclose(
        ds.final_mean_distance.sel({"graph.n": 20.0, "dynamics.step_size": 0.05}).values,
        ref.distance_to_anchor.isel(step=-1).values[:, mobile].mean(1),
        rtol=1e-5,
    )
    assert "final_state" not in ds  # the two graph sizes have no common agent axis


def test_confidence_sweep_is_the_hk_bifurcation(tmp_path):
    s = load_scenario(ROOT / "scenarios" / "hegselmann_krause.toml", ["dynamics.steps=60", "record.every=60"])
    ds = sweep(s, {"dynamics.confidence": [0.05, 0.1, 0.3]}, seeds=1)
    k = ds.clusters.isel(seed=0).values
    assert k[0] > k[1] > k[2] == 1
    final = ds.final_state.isel(seed=0, coord=0).values[:, 1:]
    assert len(np.unique(np.round(final[2], 9))) == 1  # consensus at epsilon = 0.3


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("lin:0:1", "a range is lin:START:STOP:COUNT"),
        ("log:0:1:5", "a log range needs ends > 0"),
        ("lin:0:1:0", "a count >= 1"),
        ("", "expected comma-separated values"),
        ("0.1,,0.2", "expected comma-separated values"),
        ("0.1,0.1", "repeats a value"),
        ("lin:a:b:3", "with numbers"),
    ],
)
def test_malformed_ranges_name_the_key(spec, words):
    """The library's message starts with the key; the command line's with the flag it came from."""
    with pytest.raises(SweepError, match=r"^dynamics\.step_size: ") as info:
        parse_values("dynamics.step_size", spec)
    assert words in str(info.value) and info.value.command_line() == f"--grid {info.value}"


def test_ranges_are_what_they_say():
    np.testing.assert_allclose(parse_values("k", "lin:0:1:5"), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(parse_values("k", "log:0.001:1:4"), [0.001, 0.01, 0.1, 1])
    assert parse_values("k", '1, 2.5, "adam"') == (1, 2.5, "adam")


@pytest.mark.parametrize(
    ("grid", "words"),
    [
        (["dynamics.stepsize=0.1,0.2"], "dynamics.stepsize is not a known key"),
        (["dynamics.step_size=0.1,fast"], "dynamics.step_size must be a number, got 'fast'"),
        (["dynamics.step_size=-1,0.1"], "dynamics.step_size must be > 0"),
        (["agents.stubbornness=0.5,2"], "agents.stubbornness must be numbers in [0, 1]"),
        (["dynamics.steps=10,20"], "dynamics.steps: cannot be swept"),
        (["run.seeds=1,2"], "--grid run.seeds: seeds are not a grid key"),
        (["dynamics.step_size=0.1", "dynamics.step_size=0.2"], "given twice"),
        (["dynamics.step_size"], "--grid expects KEY=VALUES"),
        (["graph.n=20,5000"], "--grid graph.n: one grid point needs about"),
    ],
)
def test_bad_grids_fail_in_one_line_before_anything_runs(small, tmp_path, capsys, grid, words):
    args = ["sweep", str(small), "--out", str(tmp_path / "out"), "--quiet", "--memory", "1"]
    for g in grid:
        args += ["--grid", g]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
    assert not (tmp_path / "out" / "sweep.nc").exists()


def test_cli_writes_the_dataset_the_manifest_and_a_figure_and_plot_recognises_it(small, tmp_path, capsys):
    out = tmp_path / "sw"
    code = main(["sweep", str(small), "--grid", "dynamics.step_size=log:0.01:0.1:4", "--seeds", "2", "--out", str(out)])
    assert code == 0
    printed, progress = capsys.readouterr()
    assert "4 dynamics.step_size = 4 points x 2 seeds" in progress  # the description is progress: stderr
    ds = xr.open_dataset(out / "sweep.nc", engine="h5netcdf")
    reached = int(np.isfinite(ds.steps_to_tolerance.values).all(axis=-1).sum())
    assert printed.startswith(f"verdict: the hivemind formed at {reached} of 4 points")
    table = (out / "report.txt").read_text().split("\n\n", 1)[1].splitlines()
    assert "steps to tol" in table[0] and len(table) == 1 + 4  # the full table: a row per point
    assert dict(ds.final_mean_distance.sizes) == {"dynamics.step_size": 4, "seed": 2}
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["grid"]["dynamics.step_size"][0] == pytest.approx(0.01) and meta["seeds"] == [0, 1]
    assert {"jax", "hivemind"} <= set(meta["versions"]) and meta["scenario_text"] == SMALL
    assert (out / "sweep.png").stat().st_size > 10_000
    (out / "sweep.png").unlink()
    assert main(["plot", str(out), "--formats", "png"]) == 0
    assert (out / "sweep.png").is_file()
    # --out follows run's rules: not empty without --resume or --force
    assert main(["sweep", str(small), "--grid", "dynamics.step_size=0.1", "--out", str(out), "--quiet"]) == 2


@pytest.mark.slow
def test_a_killed_sweep_resumes_redoing_at_most_the_running_batch(small, tmp_path, monkeypatch, capsys):
    args = ["sweep", str(small), "--grid", "dynamics.step_size=lin:0.01:0.1:6", "--seeds", "2", "--quiet", "--memory", "0.05"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0
    real, runs = sweep_module._run_batch, []

    def killed_on_the_third(*a, **k):
        runs.append(1)
        if len(runs) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(sweep_module, "_run_batch", killed_on_the_third)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out", str(out)])
    saved = sorted(p.name for p in (out / "batches").iterdir())
    assert len(saved) == 2
    monkeypatch.setattr(sweep_module, "_run_batch", real)
    calls = []
    monkeypatch.setattr(sweep_module, "_run_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main([*args, "--out", str(out), "--resume"]) == 0
    total = len(list((tmp_path / "full" / "batches").iterdir()))
    assert len(calls) == total - 2  # only what was not saved
    a = xr.open_dataset(out / "sweep.nc", engine="h5netcdf")
    b = xr.open_dataset(tmp_path / "full" / "sweep.nc", engine="h5netcdf")
    for name in ("final_mean_distance", "final_state", "mean_distance", "clusters"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


CHILD = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from hivemind.scenario import parse_scenario
    from hivemind.runner.sweep import sweep
    assert jax.device_count() == 4
    s = parse_scenario(open(sys.argv[1]).read())
    ds = sweep(s, {"dynamics.step_size": [0.01, 0.02, 0.05, 0.08, 0.1]}, seeds=2)
    print(json.dumps({"final": ds.final_state.values.tolist(), "dist": ds.final_mean_distance.values.tolist()}))
    """
)


@pytest.mark.slow
def test_grid_batches_spread_over_four_devices_equal_one(small):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(small)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    four = json.loads(proc.stdout.strip().splitlines()[-1])
    one = sweep(load_scenario(small), {"dynamics.step_size": [0.01, 0.02, 0.05, 0.08, 0.1]}, seeds=2)
    np.testing.assert_allclose(np.asarray(four["final"]), one.final_state.values, atol=1e-6)
    np.testing.assert_allclose(np.asarray(four["dist"]), one.final_mean_distance.values, rtol=1e-5, atol=1e-7)


def test_resume_refuses_the_batches_of_another_sweep_and_keeps_them(small, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(small), "--grid", "dynamics.step_size=0.03,0.04", "--out", str(out), "--quiet"]) == 0
    saved = {p.name: p.read_bytes() for p in (out / "batches").iterdir()}
    capsys.readouterr()
    assert main(["sweep", str(small), "--grid", "dynamics.step_size=0.05", "--out", str(out), "--resume", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"{out}: the saved batches are of another sweep (scenario, grid, seeds or tol)"
    assert {p.name: p.read_bytes() for p in (out / "batches").iterdir()} == saved
