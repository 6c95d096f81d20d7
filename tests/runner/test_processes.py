"""One run over two processes on 127.0.0.1 (jax.distributed, gloo): the same run.nc as one process, and clean failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hivemind.runner.simulate import simulate
from hivemind.scenario import load_scenario

SCENARIO = "scenarios/stochastic.toml"  # a stochastic rule: the noise must split the same way


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmd(out: Path, overrides: list[str], port: int, n: int, i: int, *extra: str) -> list[str]:
    sets = [a for o in overrides for a in ("--set", o)]
    return [sys.executable, "-m", "hivemind.cli", "run", SCENARIO, "--out", str(out), "--quiet", *sets, "--coordinator",
            f"127.0.0.1:{port}", "--num-processes", str(n), "--process-id", str(i), "--timeout", "30", *extra]  # fmt: skip


def _start(out: Path, overrides: list[str], *extra: str) -> list[subprocess.Popen]:
    port = _free_port()
    return [
        subprocess.Popen(_cmd(out, overrides, port, 2, i, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]


def _finish(procs: list[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str, str]]:
    results = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        results.append((p.returncode, stdout, stderr))
    return results


def _one_process(overrides: list[str]) -> xr.Dataset:
    return simulate(load_scenario(SCENARIO, overrides))


@pytest.mark.slow
@pytest.mark.parametrize("shard", ["seeds", "agents"])
def test_two_processes_write_what_one_process_computes(tmp_path, shard):
    overrides = [f'run.shard="{shard}"', "run.seeds=[0, 1, 2]", "dynamics.steps=300", "record.every=50"]
    out = tmp_path / "run"
    (rc0, stdout0, err0), (rc1, stdout1, err1) = _finish(_start(out, overrides))
    assert (rc0, rc1) == (0, 0), err0 + err1
    assert "results:" in stdout0 and "process 1 of 2: done" in stdout1
    # Only process 0 wrote OUT.
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "manifest.json",
        "report.html",
        "report.txt",
        "run.nc",
    ]
    with xr.open_dataset(out / "run.nc") as got:
        got = got.load()
    want = _one_process(overrides)
    for name in ("state", "loss", "distance_to_anchor"):
        if shard == "seeds":  # each process runs whole seeds with the same program: bit for bit
            np.testing.assert_array_equal(got[name].values, want[name].values)
        else:  # the agents' sums are split where one process adds them in one go: float rounding
            np.testing.assert_allclose(got[name].values, want[name].values, rtol=1e-6, atol=2e-6)


def _wait_for_checkpoint(out: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while not (out / "checkpoint" / "carry.npz").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "no checkpoint appeared"
        time.sleep(0.1)


def _resume_to_one_process(out: Path, overrides: list[str]) -> None:
    """Both processes --resume; the run they finish equals one process's."""
    (rc0, _, err0), (rc1, _, err1) = _finish(_start(out, overrides, "--resume"))
    assert (rc0, rc1) == (0, 0), err0 + err1
    with xr.open_dataset(out / "run.nc") as got:
        got = got.load()
    want = _one_process(overrides)
    # One seed per process compiles the one-seed layout, where one process batches both: float rounding.
    np.testing.assert_allclose(got.state.values, want.state.values, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got.step.values, want.step.values)


@pytest.mark.slow
def test_a_dead_process_stops_the_other_in_one_line_and_resume_completes(tmp_path):
    overrides = ['run.shard="seeds"', "run.seeds=[0, 1]", "dynamics.steps=20000", "record.every=500"]
    out = tmp_path / "run"
    procs = _start(out, overrides)
    _wait_for_checkpoint(out, procs[0])
    procs[1].send_signal(signal.SIGKILL)
    killed = time.monotonic()
    (rc0, _, err0), _ = _finish(procs, timeout=60)
    assert time.monotonic() - killed < 30  # the watchdog's timeout is 30 s; the broken connection is seen at once
    assert rc0 == 1
    lines = err0.strip().splitlines()
    assert len(lines) == 1, err0
    assert "another process of the run stopped" in lines[0] and "--resume" in lines[0]
    assert (out / "checkpoint" / "carry.npz").exists() and not (out / "run.nc").exists()

    _resume_to_one_process(out, overrides)


def _refused(args: list[str], timeout: float = 60) -> tuple[str, float]:
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "hivemind.cli", "run", SCENARIO, *args], capture_output=True, text=True,
                       timeout=timeout, env=os.environ | {"PYTHONWARNINGS": "ignore"})  # fmt: skip
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0], time.monotonic() - t


@pytest.mark.parametrize(
    "args, words",
    [
        (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"], "--process-id must be in [0, 2)"),
        (["--coordinator", "127.0.0.1:1", "--num-processes", "0", "--process-id", "0"], "--num-processes must be at least 1"),
        (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "1"], "--coordinator must be HOST:PORT"),
        (["--coordinator", "127.0.0.1:7000", "--num-processes", "2"], "needs --num-processes N and --process-id I"),
        (["--num-processes", "2", "--process-id", "0"], "need --coordinator"),
        (["--coordinator", "auto", "--set", 'run.shard="seeds"'], "outside a SLURM (or similar) job"),
        (["--coordinator", "127.0.0.1:7000", "--num-processes", "2", "--process-id", "1", "--timeout", "nan"], "--timeout must"),
        (["--coordinator", "127.0.0.1:7000", "--num-processes", "2", "--process-id", "1", "--timeout", "1e12"], "(0, 86400]"),
        (["--coordinator", "127.0.0.1:7000", "--num-processes", "2", "--process-id", "1"], 'run.shard = "none"'),
    ],
)
def test_bad_process_setups_are_one_line(tmp_path, args, words):
    line, _ = _refused(["--out", str(tmp_path / "o"), *args])
    assert words in line
    assert not (tmp_path / "o").exists()


def _alone(tmp_path, port: int, process_id: int) -> list[str]:
    """The arguments of one process of two whose partner never comes, with a 3 s timeout."""
    return ["--out", str(tmp_path / "o"), "--set", 'run.shard="seeds"', "--coordinator", f"127.0.0.1:{port}",
            "--num-processes", "2", "--process-id", str(process_id), "--timeout", "3"]  # fmt: skip


def test_an_unreachable_coordinator_is_one_line_within_the_timeout(tmp_path):
    port = _free_port()  # nobody listens there
    line, seconds = _refused(_alone(tmp_path, port, 1))
    assert f"cannot reach the coordinator 127.0.0.1:{port} within 3 s" in line
    assert seconds < 30


@pytest.mark.slow
def test_processes_that_never_arrive_end_process_0_in_one_line(tmp_path):
    """Process 0 alone: the others never connect, and the watchdog ends it before JAX's fatal abort."""
    line, seconds = _refused(_alone(tmp_path, _free_port(), 0))
    assert "not every process connected" in line
    assert seconds < 30


@pytest.mark.slow
def test_a_hung_process_stops_the_other_in_one_line_and_resume_completes(tmp_path):
    """SIGSTOP leaves process 1 alive but silent: no connection breaks, and process 0 would
    wait in its next collective for ever. The heartbeat watchdog ends it in one line."""
    overrides = ['run.shard="seeds"', "run.seeds=[0, 1]", "dynamics.steps=20000", "record.every=500"]
    out = tmp_path / "run"
    procs = _start(out, overrides, "--timeout", "6")
    _wait_for_checkpoint(out, procs[0])
    procs[1].send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        stdout0, err0 = procs[0].communicate(timeout=60)
    finally:
        procs[1].kill()
        procs[1].communicate()
    # JAX's own heartbeat deadline (2 x 6 + 30 s) would abort with a page of log instead.
    assert 6 <= time.monotonic() - stopped < 30
    assert procs[0].returncode == 1
    lines = err0.strip().splitlines()
    assert len(lines) == 1, err0
    assert "process 1 sent no heartbeat for 6 s" in lines[0] and "--resume" in lines[0]
    step = int(lines[0].split("the checkpoint at step ")[1].split()[0])
    assert 0 < step < 20000 and (out / "checkpoint" / "carry.npz").exists() and not (out / "run.nc").exists()

    _resume_to_one_process(out, overrides)


SWEEP_GRID = ["--grid", "dynamics.step_size=0.01,0.02,0.05", "--grid", "anchor.coupling=0.5,2"]


def _sweep_cmd(scenario: Path, out: Path, port: int, n: int, i: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hivemind.cli", "sweep", str(scenario), *SWEEP_GRID, "--seeds", "3", "--out", str(out),
            "--quiet", "--formats", "png", "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n),
            "--process-id", str(i), "--timeout", "30", *extra]  # fmt: skip


@pytest.fixture
def sweep_scenario(tmp_path) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(
        '[manifold]\nkind = "sphere"\ndim = 3\n[graph]\nkind = "barabasi_albert"\nn = 30\nparams = { m = 2 }\n'
        '[dynamics]\nrule = "stochastic"\nstep_size = 0.05\nnoise = 0.02\nsteps = 300\n[record]\nevery = 10\n'
    )
    return path


@pytest.mark.slow
def test_two_processes_sweep_what_one_process_sweeps(tmp_path, sweep_scenario):
    """The grid's 6 points x 3 seeds are split over the two processes' devices; process 0
    gathers and writes them. Each process compiles the program for its half of the lanes,
    which XLA vectorises differently from all of them at once: float rounding, as with four
    devices of one process (test_sweep)."""
    port = _free_port()
    out = tmp_path / "two"
    procs = [subprocess.Popen(_sweep_cmd(sweep_scenario, out, port, 2, i), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]  # fmt: skip
    (rc0, stdout0, err0), (rc1, stdout1, err1) = _finish(procs)
    assert (rc0, rc1) == (0, 0), err0 + err1
    assert "results:" in stdout0 and "process 1 of 2: done" in stdout1
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert written == ["batches", "report.html", "report.txt", "sweep.json", "sweep.nc", "sweep.png"]
    one = tmp_path / "one"
    argv = [sys.executable, "-m", "hivemind.cli", "sweep", str(sweep_scenario), *SWEEP_GRID, "--seeds", "3", "--out",
            str(one), "--quiet", "--formats", "png"]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with xr.open_dataset(out / "sweep.nc") as got, xr.open_dataset(one / "sweep.nc") as want:
        assert got.final_state.shape == (3, 2, 3, 30, 4)
        np.testing.assert_allclose(got.final_state.values, want.final_state.values, rtol=0, atol=1e-6)
        for name in ("mean_distance", "final_loss"):
            np.testing.assert_allclose(got[name].values, want[name].values, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(got.clusters.values, want.clusters.values)
        assert not np.allclose(got.final_mean_distance.values[0], got.final_mean_distance.values[-1])  # the grid matters


@pytest.mark.slow
def test_a_hung_process_stops_a_sweep_in_one_line_and_resume_runs_only_the_rest(tmp_path, sweep_scenario):
    long = ["--set", "dynamics.steps=20000", "--memory", "0.06"]  # two points a batch: three batches
    port = _free_port()
    out = tmp_path / "sweep"
    procs = [subprocess.Popen(_sweep_cmd(sweep_scenario, out, port, 2, i, *long, "--timeout", "6"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]  # fmt: skip
    deadline = time.monotonic() + 240
    while not list(out.glob("batches/batch_*.npz")):
        assert time.monotonic() < deadline and procs[0].poll() is None, "no batch was saved"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGSTOP)
    try:
        _, err0 = procs[0].communicate(timeout=60)
    finally:
        procs[1].kill()
        procs[1].communicate()
    assert procs[0].returncode == 1
    lines = err0.strip().splitlines()
    assert len(lines) == 1, err0
    assert "another process of the sweep stopped (process 1 sent no heartbeat for 6 s" in lines[0]
    assert f"the finished batches are kept in {out}/batches" in lines[0] and "--resume" in lines[0]
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("batches/batch_*.npz")}
    assert 1 <= len(kept) < 3 and not (out / "sweep.nc").exists()

    port = _free_port()
    procs = [subprocess.Popen(_sweep_cmd(sweep_scenario, out, port, 2, i, *long, "--resume"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]  # fmt: skip
    (rc0, _, err0), (rc1, _, err1) = _finish(procs)
    assert (rc0, rc1) == (0, 0), err0 + err1
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("batches/batch_*.npz")}
    assert len(after) == 3 and all(after[name] == t for name, t in kept.items())  # the kept batches did not run again
    one = tmp_path / "one"
    argv = [sys.executable, "-m", "hivemind.cli", "sweep", str(sweep_scenario), *SWEEP_GRID, "--seeds", "3", "--out",
            str(one), "--quiet", "--formats", "png", *long]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with xr.open_dataset(out / "sweep.nc") as got, xr.open_dataset(one / "sweep.nc") as want:
        np.testing.assert_allclose(got.final_state.values, want.final_state.values, rtol=0, atol=1e-5)
        np.testing.assert_allclose(got.mean_distance.values, want.mean_distance.values, rtol=1e-4, atol=1e-6)


def test_a_sweep_with_a_bad_process_setup_is_one_line(tmp_path, sweep_scenario):
    argv = [sys.executable, "-m", "hivemind.cli", "sweep", str(sweep_scenario), *SWEEP_GRID, "--out", str(tmp_path / "o")]
    for extra, words in [
        (["--num-processes", "2", "--process-id", "0"], "need --coordinator"),
        (["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"], "--process-id must be in [0, 2)"),
    ]:
        r = subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_sweep_that_process_0_refuses_ends_every_process_in_one_line(tmp_path, sweep_scenario):
    """Saved batches of another grid: process 0 refuses after reading OUT, and tells the others,
    who would otherwise wait in the next collective."""
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "hivemind.cli", "sweep", str(sweep_scenario), "--grid", "dynamics.step_size=0.03,0.04",
            "--out", str(out), "--quiet", "--formats", "png"]  # fmt: skip
    assert subprocess.run(argv, capture_output=True, text=True, timeout=300).returncode == 0
    port = _free_port()
    procs = [subprocess.Popen(_sweep_cmd(sweep_scenario, out, port, 2, i, "--resume"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]  # fmt: skip
    (rc0, _, err0), (rc1, _, err1) = _finish(procs, timeout=120)
    assert (rc0, rc1) == (2, 2), err0 + err1
    assert err0.strip().splitlines() == [f"{out}: the saved batches are of another sweep (scenario, grid, seeds or tol)"]
    assert err1.strip().splitlines() == [f"{out}: process 0 refused to sweep there (its own message says why)"]
