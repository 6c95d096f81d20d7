"""One writer per output directory: a second process is refused at once, a dead one's lock is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hivemind.cli import main
from hivemind.io.outdir import LOCK_NAME, DirectoryBusy, locked
from tests.helpers import scenario_text

ROOT = Path(__file__).resolve().parents[2]

# Holds the lock of argv[1] until killed, and says when it has it.
HOLDER = """
import sys, time
from hivemind.io.outdir import locked
with locked(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def hold(directory: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from hivemind.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(scenario_text())
    return path


@pytest.mark.slow
def test_a_second_writer_is_refused_at_once_with_the_holders_pid(tmp_path, scenario_file):
    out = tmp_path / "out"
    holder = hold(out)
    try:
        for command in (
            ["run", str(scenario_file), "--out", str(out)],
            ["run", str(scenario_file), "--out", str(out), "--force"],
            ["entropy", str(scenario_file), "--out", str(out), "--samples", "8"],
            ["paths", str(scenario_file), "--out", str(out), "--rules", "gradient"],
        ):
            t0 = time.monotonic()
            proc = run_cli(*command)
            assert proc.returncode == 2, (command, proc.stderr)
            assert proc.stderr.count("\n") == 1 and f"process {holder.pid}" in proc.stderr, proc.stderr
            assert time.monotonic() - t0 < 60  # refused, not queued behind the holder
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written beside the holder
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path, scenario_file):
    out = tmp_path / "out"
    holder = hold(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (out / LOCK_NAME).read_text().strip() == str(holder.pid)  # the dead process's lock file is still there
    proc = run_cli("run", str(scenario_file), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (out / "run.nc").is_file()


@pytest.mark.slow
def test_two_real_runs_into_one_directory_one_wins(tmp_path, scenario_file):
    long = tmp_path / "long.toml"
    long.write_text(scenario_text(dynamics={"steps": 20000}, record={"every": 1000}))
    out = tmp_path / "out"
    code = "import sys; from hivemind.cli import main; sys.exit(main(sys.argv[1:]))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, "run", str(long), "--out", str(out), "--quiet", "--force"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    # Either the second started while the first held the lock (refused), or after it finished (ran too).
    assert codes in ([0, 0], [0, 2]), results
    for p, (_, err) in zip(procs, results, strict=True):
        if p.returncode == 2:
            assert "another hivemind command" in err and err.count("\n") == 1


def test_the_lock_is_released_when_a_command_returns(tmp_path, scenario_file, capsys):
    out = tmp_path / "out"
    assert main(["run", str(scenario_file), "--out", str(out), "--quiet"]) == 0
    with locked(out):  # the same process may take it again: the command let it go
        pass
    assert main(["run", str(scenario_file), "--out", str(out), "--quiet", "--force"]) == 0


def test_in_process_a_held_lock_refuses(tmp_path):
    with locked(tmp_path / "d"):
        with pytest.raises(DirectoryBusy, match=str(os.getpid())):
            with locked(tmp_path / "d"):
                pass
