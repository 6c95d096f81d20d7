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
