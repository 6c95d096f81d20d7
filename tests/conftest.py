"""Shared test set-up.

64-bit types are enabled for the whole session so float64 cases can run; float32 cases
create float32 arrays explicitly, and ``simulate`` sets its own precision.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
# llama.cpp's OpenMP threads spin between graph computations by default; with two test workers
# on two cores, each worker's spinning threads starve the other's (tests/live/test_live_model.py:
# 300 s of worker time spinning, 91 s passive). Read by libgomp when llama.cpp loads, and
# inherited by the CLI subprocesses the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

# The CLI's compilation cache, shared by both workers and every CLI process the tests start
# (they inherit the variable): the same small programs are compiled by dozens of them. A test
# that needs its own cache, or none, sets these variables itself.
os.environ.setdefault("HIVEMIND_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"hivemind-tests-jax-{os.getuid()}"))
# Only programs that took 0.2 s or more: the tests compile thousands of small programs once
# each (225 optax names), and keeping them all made that test twice as slow (135 s against 70 s).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from hivemind.cli.common import use_compile_cache  # noqa: E402

jax.config.update("jax_enable_x64", True)
# Before the first compilation: JAX decides once per process whether it uses the cache.
use_compile_cache()

# JAX compiles on first use of each shape: deadlines would measure compilation.
settings.register_profile("hivemind", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hivemind")


# --- the everyday tier (make check) -------------------------------------------------------
# Each test's seconds (setup + call) in the last full run recorded with --record-durations
# (make durations). --fast keeps the tests under FAST_S there and not marked slow, and every test
# the file does not know yet (a new test runs until it is measured).
DURATIONS = Path(__file__).resolve().parent / "durations.json"
FAST_S = 0.5


def pytest_addoption(parser):
    group = parser.getgroup("hivemind")
    group.addoption("--fast", action="store_true", help=f"only the tests that took under {FAST_S} s in tests/durations.json")
    group.addoption("--record-durations", action="store_true", help="write every test's seconds to tests/durations.json")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--fast"):
        return
    import json

    known = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
    keep, drop = [], []
    for item in items:
        fast = "slow" not in item.keywords and known.get(item.nodeid, 0.0) < FAST_S
        (keep if fast else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    if report.when in ("setup", "call"):
        _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    # Only the controller (xdist's workers report to it) and only a full run writes the file.
    if not session.config.getoption("--record-durations") or hasattr(session.config, "workerinput"):
        return
    import json

    DURATIONS.write_text(json.dumps({k: round(v, 2) for k, v in sorted(_seconds.items())}, indent=0) + "\n")
