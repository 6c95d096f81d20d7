"""Nothing lost: checkpoints survive SIGKILL and Ctrl-C, resumed runs are bitwise equal, --out is safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hivemind.cli import main
from hivemind.runner.simulate import simulate
from tests.helpers import INTERRUPTIBLE, scenario, scenario_text

# Long enough (a few seconds) to be caught mid-run; 20 chunks, so a checkpoint every ~5 %.
LONG = scenario_text(
    manifold={"kind": "sphere", "dim": 15},
    graph={"kind": "barabasi_albert", "n": 300, "params": {"m": 3}},
    dynamics={"rule": "stochastic", "step_size": 0.02, "steps": 40000, "noise": 0.01},
    record={"every": 100},
    run={"seeds": [0, 1]},
)


def cli(*args: str) -> subprocess.Popen:
    code = INTERRUPTIBLE + "import sys; from hivemind.cli import main; sys.exit(main(sys.argv[1:]))"
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
    )


def arrays(run_dir: Path) -> dict[str, np.ndarray]:
    with xr.open_dataset(run_dir / "run.nc", engine="h5netcdf") as ds:
        return {k: ds[k].values for k in ("state", "loss", "distance_to_anchor")} | {"step": ds.step.values}


def checkpoint_chunk(out: Path) -> int:
    """The chunk of the latest checkpoint in ``out`` (-1 while there is none)."""
    try:
        with np.load(out / "checkpoint" / "carry.npz") as f:
            return int(f["meta_chunk"])
    except (OSError, ValueError, KeyError, EOFError):
        return -1


def interrupt_midway(path: Path, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a run, wait for its third checkpoint, send ``sig``; return the finished process."""
    proc = cli("run", str(path), "--out", str(out), "--quiet")
    deadline = time.monotonic() + 240
    while checkpoint_chunk(out) < 2:
        if proc.poll() is not None:
            pytest.fail(f"the run finished before it could be interrupted: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint appeared")
        time.sleep(0.02)
    os.kill(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, through the same CLI in a separate process."""
    root = tmp_path_factory.mktemp("ref")
    path = root / "long.toml"
    path.write_text(LONG)
    proc = cli("run", str(path), "--out", str(root / "full"), "--quiet")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert not (root / "full" / "checkpoint").exists()  # cleared once the run is complete
    return path, arrays(root / "full")


def assert_bitwise_equal(a: dict, b: dict) -> None:
    for k in a:
        assert a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k]), k


def test_sigkill_then_resume_is_bitwise_equal(tmp_path, reference):
    path, full = reference
    out = tmp_path / "run"
    killed = interrupt_midway(path, out, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "run.nc").exists()
    resumed = cli("run", str(path), "--out", str(out), "--resume")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    step = int(stdout.split("resuming from step ")[1].split()[0])
    assert 0 < step < 40000  # it did continue, not start over
    assert_bitwise_equal(arrays(out), full)


def test_ctrl_c_saves_what_was_recorded_and_says_how_to_resume(tmp_path, reference):
    path, full = reference
    out = tmp_path / "run"
    stopped = interrupt_midway(path, out, signal.SIGINT)
    assert stopped.returncode == 130
    assert stopped.stderr.count("\n") == 1 and "--resume" in stopped.stderr and "Traceback" not in stopped.stderr
    meta = json.loads((out / "manifest.json").read_text())
    assert meta["status"].startswith("interrupted at step")
    partial = arrays(out)
    n = partial["step"].size
    assert 1 < n < full["step"].size
    assert np.array_equal(partial["state"], full["state"][:, :n])  # what it saved is the real prefix
    resumed = cli("run", str(path), "--out", str(out), "--resume", "--quiet")
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert_bitwise_equal(arrays(out), full)


def test_resume_refuses_a_checkpoint_of_another_scenario(tmp_path, reference):
    path, _ = reference
    out = tmp_path / "run"
    interrupt_midway(path, out, signal.SIGKILL)
    proc = cli("run", str(path), "--out", str(out), "--resume", "--set", "dynamics.step_size=0.03")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    # The scenario's description (progress, on stderr), then the refusal in one line.
    *before, last = stderr.splitlines()
    assert "different scenario" in last and len(before) <= 1 and "different scenario" not in "".join(before)


def test_out_must_be_empty_unless_forced(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(scenario_text())
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert (out / "precious.txt").read_text() == "keep me" and not (out / "run.nc").exists()
    assert main(["run", str(path), "--out", str(out), "--quiet", "--force"]) == 0
    assert (out / "run.nc").exists() and (out / "precious.txt").exists()  # --force overwrites, it does not wipe
    # A finished run of the same scenario: --resume has nothing left to do, and says so.
    assert main(["run", str(path), "--out", str(out), "--quiet", "--resume"]) == 0
    assert "already complete" in capsys.readouterr().out
    # ... but a finished run of another scenario is not overwritten by --resume.
    assert main(["run", str(path), "--out", str(out), "--quiet", "--resume", "--set", "dynamics.steps=50"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "finished run of another scenario" in err


def test_resume_with_nothing_to_resume_starts_from_step_0(tmp_path, capsys):
    """Requeued cluster jobs pass --resume on their first attempt too."""
    path = tmp_path / "s.toml"
    path.write_text(scenario_text())
    fresh = tmp_path / "never-existed"
    assert main(["run", str(path), "--out", str(fresh), "--quiet", "--resume"]) == 0
    assert "no checkpoint to resume from; starting from step 0" in capsys.readouterr().out
    assert main(["run", str(path), "--out", str(tmp_path / "plain"), "--quiet"]) == 0
    assert_bitwise_equal(arrays(fresh), arrays(tmp_path / "plain"))
    # A directory that a kill left without a checkpoint (only the partial records): the same.
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / ".run.nc.partial").write_bytes(b"torn")
    assert main(["run", str(path), "--out", str(killed), "--quiet", "--resume"]) == 0
    assert_bitwise_equal(arrays(killed), arrays(tmp_path / "plain"))
    assert not (killed / ".run.nc.partial").exists()


def test_same_seed_is_bitwise_identical_and_seeds_differ(tmp_path, capsys):
    dyn = {"rule": "stochastic", "noise": 0.05, "steps": 200}
    text = scenario_text(dynamics=dyn, run={"seeds": [3, 4]})
    path = tmp_path / "s.toml"
    path.write_text(text)
    for name in ("a", "b"):
        assert main(["run", str(path), "--out", str(tmp_path / name), "--quiet"]) == 0
    a, b = arrays(tmp_path / "a"), arrays(tmp_path / "b")
    assert_bitwise_equal(a, b)
    assert not np.allclose(a["state"][0, 1:], a["state"][1, 1:])  # seeds 3 and 4 take different paths
    meta = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert meta["scenario_text"] == text and meta["seeds"] == [3, 4] and meta["precision"] == "float32"
    assert meta["device_count"] >= 1 and {"jax", "numpy", "hivemind"} <= set(meta["versions"])
    assert len(meta["scenario_fingerprint"]) == 64


def test_fingerprint_sees_overrides_that_the_text_hash_does_not():
    a = scenario()
    b = scenario(dynamics={"step_size": 0.2})
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == scenario().fingerprint


def test_checkpoint_every_zero_writes_nothing(tmp_path):
    s = scenario(run={"checkpoint_every": 0})
    simulate(s, checkpoint_dir=tmp_path / "ck")
    assert not any((tmp_path / "ck").glob("carry.npz"))


def test_a_write_that_fails_halfway_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    from hivemind.io import results

    path = tmp_path / "manifest.json"
    results.save_json({"status": "complete"}, path)

    def half_then_crash(data, f, **kwargs):
        f.write('{"status": "incompl')
        raise OSError("disk full")

    monkeypatch.setattr(results.json, "dump", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        results.save_json({"status": "new"}, path)
    assert json.loads(path.read_text()) == {"status": "complete"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


RELAYOUT = scenario_text(
    manifold={"kind": "sphere", "dim": 3},
    graph={"kind": "barabasi_albert", "n": 30, "params": {"m": 2}},
    dynamics={"rule": "adam", "step_size": 0.02, "steps": 400},
    record={"every": 10},
    # The pure-JAX pair kernel on every layout: the fused one runs in one place only, and the
    # promise tested here is bitwise equality across layouts with one kernel.
    run={"seeds": [0, 1, 2], "kernel": "jax"},
)

# On four devices: interrupt a run spread by seeds and one spread by agents halfway (3 seeds
# and 30 agents pad to 4 and 32), and resume the one-device run the parent interrupted.
RELAYOUT_CHILD = """
import json, sys
import jax, numpy as np
from hivemind.runner.simulate import SimulationInterrupted, simulate
from hivemind.scenario import parse_scenario
assert jax.device_count() == 4
text, work = open(sys.argv[1]).read(), sys.argv[2]

def halfway(done, total):
    if done >= total // 2:
        raise KeyboardInterrupt

for shard in ("seeds", "agents"):
    try:
        simulate(parse_scenario(text, overrides=[f'run.shard="{shard}"']), progress=halfway,
                 checkpoint_dir=f"{work}/{shard}", resume=False)
    except SimulationInterrupted:
        pass
seen = []
ds = simulate(parse_scenario(text, overrides=['run.shard="agents"']), progress=lambda d, t: seen.append(d),
              checkpoint_dir=f"{work}/none", resume=True)
print(json.dumps({"first": seen[0], "state": ds.state.values.tolist()}))
"""


@pytest.mark.slow
def test_a_checkpoint_resumes_on_another_device_count_and_shard(tmp_path):
    """run.shard and the number of devices are execution settings: a run interrupted on four
    devices resumes on one, and the other way round, to float rounding of an uninterrupted run."""
    from hivemind.runner.simulate import SimulationInterrupted
    from hivemind.scenario import parse_scenario

    path = tmp_path / "s.toml"
    path.write_text(RELAYOUT)
    plain = parse_scenario(RELAYOUT)
    want = simulate(plain).state.values

    def halfway(done, total):
        if done >= total // 2:
            raise KeyboardInterrupt

    with pytest.raises(SimulationInterrupted):
        simulate(plain, progress=halfway, checkpoint_dir=tmp_path / "none")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", RELAYOUT_CHILD, str(path), str(tmp_path)], capture_output=True, text=True,
                          env=env, cwd=root, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    four = json.loads(proc.stdout.strip().splitlines()[-1])
    assert four["first"] >= 200  # went on from the one-device checkpoint
    np.testing.assert_allclose(np.asarray(four["state"]), want, rtol=0, atol=1e-5)
    assert np.abs(want[:, -1] - want[:, 0]).max() > 0.01  # the runs moved: the comparison means something
    for shard in ("seeds", "agents"):
        seen = []
        got = simulate(plain, progress=lambda d, t, seen=seen: seen.append(d), checkpoint_dir=tmp_path / shard, resume=True)
        assert seen[0] >= 200, shard
        np.testing.assert_allclose(got.state.values, want, rtol=0, atol=1e-5, err_msg=shard)


def test_a_resume_on_other_devices_says_what_changed(tmp_path):
    from hivemind.runner.simulate import execution_changes

    assert execution_changes({"run.shard": "seeds", "devices": 4}, {"run.shard": "seeds", "devices": 4}) is None
    line = execution_changes(
        {"run.shard": "agents", "devices": 4, "processes": 2}, {"run.shard": "none", "devices": 1, "processes": 1}
    )
    assert line.startswith("resuming with other execution settings: run.shard agents -> none, devices 4 -> 1, processes 2 -> 1")
    assert execution_changes({}, {"run.shard": "none", "devices": 1}) is None  # a checkpoint that did not say


def test_hivemind_run_resumes_with_another_shard_and_says_so(tmp_path, capsys):
    from hivemind.runner.simulate import SimulationInterrupted
    from hivemind.scenario import parse_scenario

    path = tmp_path / "s.toml"
    path.write_text(RELAYOUT)
    out = tmp_path / "out"

    def halfway(done, total):
        if done >= total // 2:
            raise KeyboardInterrupt

    with pytest.raises(SimulationInterrupted):
        simulate(parse_scenario(RELAYOUT), progress=halfway, checkpoint_dir=out / "checkpoint", out_file=out / "run.nc")
    # One layout and the other give bitwise the same run with the same pair kernel; the fused
    # kernel runs in one place only, so both halves take the pure-JAX one here.
    assert main(["run", str(path), "--out", str(out), "--resume", "--quiet", "--set", 'run.shard="seeds"']) == 0
    printed = capsys.readouterr().out
    assert "resuming with other execution settings: run.shard none -> seeds;" in printed
    np.testing.assert_array_equal(arrays(out)["state"], simulate(parse_scenario(RELAYOUT)).state.values)
