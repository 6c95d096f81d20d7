"""Load: a graph file with 10^6 edges and 10^5 agents goes through the CLI in linear memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.helpers import scenario_text

N, M = 100_000, 1_000_000
# States are N x 16 float32 (6.4 MB), the edge arrays M x (2 int32 + float32) per direction:
# everything linear fits in well under a gigabyte beyond the interpreter, JAX and networkx.
# Anything quadratic in N (a dense N x N matrix is 40 GB in float32) could not.
PEAK_LIMIT_GB = 3.0


def test_million_edge_file_runs_through_the_cli_in_linear_memory(tmp_path):
    rng = np.random.default_rng(0)
    src, dst = rng.integers(0, N, M), rng.integers(0, N, M)
    edges = tmp_path / "big.edges"
    np.savetxt(edges, np.column_stack([src, dst, rng.random(M) + 0.5]), fmt=["%d", "%d", "%.3f"])
    path = tmp_path / "big.toml"
    path.write_text(
        scenario_text(
            manifold={"kind": "sphere", "dim": 15},
            graph={"kind": "file", "path": "big.edges", "n": None},
            dynamics={"rule": "gradient", "step_size": 0.02, "steps": 20},
            record={"every": 10},
        )
    )
    out = tmp_path / "run"
    code = "import sys; from hivemind.cli import main; sys.exit(main(sys.argv[1:]))"
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "run", str(path), "--out", str(out), "--quiet"],
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).parent.parent,
        )
        # wait4 gives this child's own peak, not the largest of every child pytest has had.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, log.read_text()
    peak_gb = usage.ru_maxrss / 2**20  # KB on Linux
    assert 0 < peak_gb < PEAK_LIMIT_GB, f"peak resident memory {peak_gb:.2f} GB"
    summary = json.loads((out / "manifest.json").read_text())["summary"]
    n_nodes = np.unique(np.concatenate([src, dst])).size
    assert summary["agents"] == n_nodes - 1
    assert summary["final_distance_mean"] < summary["initial_distance_mean"]
