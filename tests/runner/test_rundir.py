"""hivemind.run_in: a run into a directory with the command line's rules, from Python."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hivemind import run_in, simulate
from hivemind.io.outdir import OutError
from hivemind.runner.simulate import SimulationInterrupted
from tests.helpers import scenario

SMALL = {"dynamics": {"steps": 400}, "record": {"every": 10}, "graph": {"kind": "cycle", "n": 12}}


def test_a_run_lands_whole_and_a_second_call_needs_resume_or_force(tmp_path):
    s = scenario(**SMALL)
    ds = run_in(s, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["scenario_fingerprint"] == s.fingerprint
    np.testing.assert_array_equal(ds.state.values, simulate(s).state.values)
    with pytest.raises(OutError, match="--out is not empty"):
        run_in(s, tmp_path / "out")
    written = (tmp_path / "out" / "run.nc").stat().st_mtime_ns
    again = run_in(s, tmp_path / "out", resume=True)  # complete: read back, not run again
    assert (tmp_path / "out" / "run.nc").stat().st_mtime_ns == written
    np.testing.assert_array_equal(again.state.values, ds.state.values)
    other = scenario(**(SMALL | {"dynamics": {"steps": 400, "step_size": 0.05}}))
    with pytest.raises(OutError, match="finished run of another scenario"):
        run_in(other, tmp_path / "out", resume=True)
    assert run_in(other, tmp_path / "out", force=True).attrs["step_size"] == 0.05


def test_an_interrupted_run_resumes_to_the_same_bits(tmp_path):
    s = scenario(**SMALL)

    def stop_halfway(done, total):
        if done >= total // 2:
            raise KeyboardInterrupt

    with pytest.raises(SimulationInterrupted):
        run_in(s, tmp_path / "out", progress=stop_halfway)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["status"] != "complete"
    seen = []
    ds = run_in(s, tmp_path / "out", resume=True, progress=lambda done, total: seen.append(done))
    assert seen[0] >= 200  # went on from the checkpoint, not from step 0
    np.testing.assert_array_equal(ds.state.values, simulate(s).state.values)


def test_started_says_what_happens_and_then_runs_while_the_directory_is_locked(tmp_path):
    from hivemind.io.outdir import DirectoryBusy, locked

    s = scenario(**SMALL)
    said, seen = [], []

    def then(ds):
        seen.append(int(ds.step[-1]))
        with pytest.raises(DirectoryBusy), locked(tmp_path / "out"):  # another writer would be refused now
            pass

    run_in(s, tmp_path / "out", started=said.append, then=then)
    run_in(s, tmp_path / "out", resume=True, started=said.append, then=then)  # complete: nothing runs
    assert said == ["fresh", "complete"] and seen == [400]
    with locked(tmp_path / "out"):  # released once run_in returned
        pass
