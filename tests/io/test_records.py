"""Records stream to disk: memory does not grow with steps, a full disk loses nothing, big results load lazily."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hivemind.cli import main
from hivemind.io import records
from hivemind.runner.simulate import output_bytes, record_steps, simulate
from tests.helpers import scenario, scenario_text

ROOT = Path(__file__).resolve().parents[2]


def arrays(path: Path) -> dict[str, np.ndarray]:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return {k: ds[k].values for k in ("state", "loss", "distance_to_anchor", "step")} | {"status": ds.attrs["status"]}


def test_streamed_file_equals_the_in_memory_result(tmp_path):
    s = scenario(dynamics={"rule": "stochastic", "noise": 0.05, "steps": 333}, record={"every": 7}, run={"seeds": [1, 2]})
    in_memory = simulate(s)
    streamed = simulate(s, out_file=tmp_path / "run.nc")
    on_disk = arrays(tmp_path / "run.nc")
    for k in ("state", "loss", "distance_to_anchor"):
        assert np.array_equal(on_disk[k], in_memory[k].values), k
        assert np.array_equal(streamed[k].values, in_memory[k].values), k
    np.testing.assert_array_equal(on_disk["step"], record_steps(333, 7))
    assert on_disk["status"] == "complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nc"]  # the partial file was renamed, nothing else left


def test_estimated_size_matches_the_written_file(tmp_path):
    s = scenario(graph={"kind": "cycle", "n": 50}, dynamics={"steps": 4000}, record={"every": 2})
    simulate(s, out_file=tmp_path / "run.nc")
    size = (tmp_path / "run.nc").stat().st_size
    assert 0.8 < size / output_bytes(s) < 1.25, (size, output_bytes(s))


def test_chunks_stay_small_however_long_the_run():
    from hivemind.runner.simulate import CHUNK_RECORD_BYTES, chunk_plan, output_record_bytes

    s = scenario(
        graph={"kind": "cycle", "n": 200}, manifold={"kind": "sphere", "dim": 15}, dynamics={"steps": 10**6}, record={"every": 1}
    )
    plan = chunk_plan(s)
    assert sum(n * stride for n, stride in plan) == 10**6
    assert max(n for n, _ in plan) * output_record_bytes(s) <= CHUNK_RECORD_BYTES


def test_a_large_result_comes_back_backed_by_its_file(tmp_path, monkeypatch):
    monkeypatch.setattr(records, "IN_MEMORY_BYTES", 10_000)
    s = scenario(dynamics={"steps": 500}, record={"every": 1})
    ds = simulate(s)  # no out_file: records above the limit go to a temporary file
    source = Path(ds.encoding["source"])
    assert source.is_file() and source.parent.name.startswith("hivemind-")
    assert ds["state"].variable._in_memory is False  # lazy: read on access
    assert np.array_equal(ds.state.isel(step=-1).values, simulate(s, out_file=tmp_path / "r.nc").state.isel(step=-1).values)


PEAK = """
import sys, resource
from hivemind import load_scenario, simulate
s = load_scenario(sys.argv[1], [f"dynamics.steps={sys.argv[2]}", "record.every=1"])
simulate(s, out_file=sys.argv[3])
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        print(int(line.split()[1]) // 1024)
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_recorded_steps(tmp_path):
    """10x the recorded steps (34 MB -> 340 MB of records) costs no more memory: they stream to disk."""
    path = tmp_path / "s.toml"
    path.write_text(
        scenario_text(manifold={"kind": "sphere", "dim": 15}, graph={"kind": "barabasi_albert", "n": 50, "params": {"m": 2}})
    )
    peaks = {}
    for steps in (10_000, 100_000):
        out = tmp_path / f"{steps}.nc"
        proc = subprocess.run(
            [sys.executable, "-c", PEAK, str(path), str(steps), str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600
        )
        assert proc.returncode == 0, proc.stderr
        peaks[steps] = int(proc.stdout.split()[-1])
        assert out.stat().st_size > steps * 50 * 17 * 4
    records_mb = 90_000 * 50 * (17 + 1) * 4 / 2**20  # what the longer run records beyond the shorter one
    assert peaks[100_000] - peaks[10_000] < 0.25 * records_mb, (peaks, records_mb)


def failing_append(n: int):
    """``FileRecords.append`` that runs out of space on its ``n``-th call, after half-writing the chunk."""
    real, calls = records.FileRecords.append, []

    def append(self, rec):
        calls.append(1)
        if len(calls) == n:
            self._resize(self.count + rec["loss"].shape[1])  # HDF5 grew the file, then the disk filled
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        return real(self, rec)

    return append


def test_a_full_disk_keeps_the_checkpoint_says_so_and_resume_is_bitwise_equal(tmp_path, monkeypatch, capsys):
    path = tmp_path / "s.toml"
    path.write_text(scenario_text(dynamics={"rule": "stochastic", "noise": 0.05, "steps": 2000}, record={"every": 10}))
    assert main(["run", str(path), "--out", str(tmp_path / "full"), "--quiet"]) == 0
    out = tmp_path / "out"
    # A finished earlier run in OUT stays the last good run.nc until the new one is complete.
    assert main(["run", str(path), "--out", str(out), "--quiet", "--set", "dynamics.steps=100"]) == 0
    before = arrays(out / "run.nc")
    capsys.readouterr()

    monkeypatch.setattr(records.FileRecords, "append", failing_append(7))
    assert main(["run", str(path), "--out", str(out), "--quiet", "--force"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no space left on device" in err and "checkpoint at step 600" in err and "--resume" in err
    after = arrays(out / "run.nc")
    assert all(np.array_equal(before[k], after[k]) for k in ("state", "step"))  # the last good run.nc, untouched

    monkeypatch.undo()
    assert main(["run", str(path), "--out", str(out), "--quiet", "--resume"]) == 0
    resumed, full = arrays(out / "run.nc"), arrays(tmp_path / "full" / "run.nc")
    for k in ("state", "loss", "distance_to_anchor", "step"):
        assert np.array_equal(resumed[k], full[k]), k


def test_a_checkpoint_that_cannot_be_written_keeps_the_previous_one(tmp_path, monkeypatch, capsys):
    from hivemind.io import checkpoint

    path = tmp_path / "s.toml"
    path.write_text(scenario_text(dynamics={"steps": 2000}, record={"every": 10}))
    assert main(["run", str(path), "--out", str(tmp_path / "full"), "--quiet"]) == 0
    real, calls = checkpoint.save_carry, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 4:
            raise PermissionError(errno.EACCES, "Permission denied", str(args[0] / "carry.npz"))
        return real(*args)

    monkeypatch.setattr(checkpoint, "save_carry", failing)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Permission denied" in err and "checkpoint at step 300" in err
    monkeypatch.undo()
    assert main(["run", str(path), "--out", str(out), "--quiet", "--resume"]) == 0
    assert np.array_equal(arrays(out / "run.nc")["state"], arrays(tmp_path / "full" / "run.nc")["state"])


def test_a_run_larger_than_the_free_space_is_refused_before_it_starts(tmp_path, monkeypatch, capsys):
    import shutil

    path = tmp_path / "s.toml"
    path.write_text(scenario_text(dynamics={"steps": 10000}, record={"every": 1}))
    usage = shutil.disk_usage(tmp_path)
    free = 100_000
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=free))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only 100.0 KB are free" in err
    every = int(err.split("record.every = ")[-1].split()[0])
    from hivemind.scenario import load_scenario

    s = load_scenario(path)
    assert output_bytes(s, every) <= free < output_bytes(s, every // 2)  # the suggestion fits, half of it would not
    assert not (tmp_path / "out" / "run.nc").exists()
