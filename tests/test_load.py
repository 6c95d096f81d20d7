"""Load: a graph file with 10^6 edges and 10^5 agents goes through the CLI in linear memory."""

from __future__ import annotations

import json
import resource
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", str(path), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.returncode == 0, proc.stderr
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak_kb >= before
    assert peak_kb < PEAK_LIMIT_GB * 2**20, f"peak resident memory {peak_kb / 2**20:.2f} GB"
    summary = json.loads((out / "manifest.json").read_text())["summary"]
    n_nodes = np.unique(np.concatenate([src, dst])).size
    assert summary["agents"] == n_nodes - 1
    assert summary["final_distance_mean"] < summary["initial_distance_mean"]
