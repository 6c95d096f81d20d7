"""The speed-and-scale harness: ``python benchmarks/run.py [--quick]`` is ``hivemind bench``.

The implementation lives in ``hivemind/bench/harness.py`` (the harness) and
``hivemind/bench/baselines.py`` (the numpy, per-agent loop and geomstats references), so that
the installed package can run it too; results land in ``benchmarks/results/``.
"""

from __future__ import annotations

import sys

from hivemind.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
