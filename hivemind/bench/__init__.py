"""``hivemind bench``: the engine raced against what a user would write instead.

``harness`` runs the comparisons and reports ratios and goals; ``baselines`` holds the
references (vectorized numpy, a per-agent loop, geomstats' sphere kernel).
"""

from hivemind.bench.harness import QUICK, BenchOptions, report, run_bench, save, scenario

__all__ = ["QUICK", "BenchOptions", "report", "run_bench", "save", "scenario"]
